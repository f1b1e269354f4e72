package holbench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Latency summarises one set of durations.
type Latency struct {
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// summarize returns nearest-rank percentiles of d (which it sorts).
func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return Latency{Count: len(d), P50: rank(0.50), P99: rank(0.99), Max: d[len(d)-1]}
}

// Traffic is what one message type experienced during the snapshot transfer.
type Traffic struct {
	// Lane is the lane the type travelled in.
	Lane string `json:"lane"`
	// QueueWait is enqueue to the start of the transport send.
	QueueWait Latency `json:"queue_wait"`
	// Delivery is enqueue to arrival in the receiver's handler.
	Delivery Latency `json:"delivery"`
	// Lost counts messages enqueued during the transfer that never arrived.
	Lost int `json:"lost"`
	// DuringTransfer counts the messages enqueued during the transfer
	// that arrived before it ended (cluster runs only): none when they are
	// stuck behind the snapshot.
	DuringTransfer int `json:"during_transfer"`
}

// ModeResult is one layout's run.
type ModeResult struct {
	Mode string `json:"mode"`
	// Append is MsgApp traffic to the follower behind the slow link (in a
	// multi-group cluster, the other groups' while group 0's snapshot is
	// in flight); Heartbeat is MsgHeartbeat traffic to it.
	Append    Traffic `json:"append"`
	Heartbeat Traffic `json:"heartbeat"`
	// SnapshotBytes and SnapshotTransfer: the snapshot's size, and the time
	// from its dispatch to its arrival.
	SnapshotBytes    int           `json:"snapshot_bytes"`
	SnapshotTransfer time.Duration `json:"snapshot_transfer_ns"`
	// SnapshotPrepare is how long the leader took to produce the forced
	// snapshot before sending it (cluster runs only).
	SnapshotPrepare time.Duration `json:"snapshot_prepare_ns,omitempty"`
	// MaxHeartbeatGap is the longest time the follower went without a
	// heartbeat during the transfer.
	MaxHeartbeatGap time.Duration `json:"max_heartbeat_gap_ns"`
	// Elections counts elections during the transfer: in a raft cluster the
	// leader changes seen; without raft, heartbeat gaps longer than the
	// election timeout (each would have let the follower campaign).
	Elections int `json:"elections"`
	// PrepElections counts elections while the leader prepared a forced
	// snapshot, before the transfer (cluster runs only): the raft loop was
	// busy, which no lane layout changes.
	PrepElections int `json:"prep_elections,omitempty"`
	// TermChanges is how far the raft term moved during the run (cluster
	// runs only).
	TermChanges uint64 `json:"term_changes"`
	// LoopStall is the longest iteration of the leader's raft loop of the
	// snapshot's group, from just before the forced snapshot to its
	// arrival (cluster runs only): making the snapshot on the raft
	// goroutine stalls it.
	LoopStall time.Duration `json:"leader_loop_stall_ns,omitempty"`
	// Writes is the latency of client writes started during the transfer,
	// from proposal to applied on the leader (cluster runs only).
	Writes Latency `json:"writes"`
	// Dropped and Errors are the dispatcher's counters by lane.
	Dropped map[string]float64 `json:"dropped"`
	Errors  map[string]float64 `json:"errors"`
}

// Report is a benchmark invocation: the same scenario in both layouts.
type Report struct {
	Scenario string `json:"scenario"`
	Setup    Setup  `json:"setup"`
	// Notes say how to read the numbers of this scenario.
	Notes    []string   `json:"notes,omitempty"`
	Legacy   ModeResult `json:"legacy"`
	FourLane ModeResult `json:"four_lane"`
}

// Setup records the parameters the numbers depend on.
type Setup struct {
	SnapshotBytes      int           `json:"snapshot_bytes"`
	LinkBytesPerSecond int64         `json:"link_bytes_per_second"`
	LinkChunkBytes     int           `json:"link_chunk_bytes"`
	LinkChunkTime      time.Duration `json:"link_chunk_time_ns"`
	AppendInterval     time.Duration `json:"append_interval_ns"`
	HeartbeatInterval  time.Duration `json:"heartbeat_interval_ns"`
	ElectionTimeout    time.Duration `json:"election_timeout_ns"`
	// Groups is the raft groups per replica (cluster scenario only).
	Groups int `json:"groups,omitempty"`
}

// Ratio is legacy over four-lane: how many times better the four-lane
// layout did. A four-lane value of zero gives +Inf when legacy is not zero
// and 1 when both are.
func Ratio(legacy, fourLane time.Duration) float64 {
	switch {
	case fourLane > 0:
		return float64(legacy) / float64(fourLane)
	case legacy > 0:
		return math.Inf(1)
	}
	return 1
}

// MinSamples is the number of MsgApps each run must have measured during
// the transfer for AppendP99Ratio to mean anything.
const MinSamples = 20

// Conclusive reports whether both runs measured at least MinSamples MsgApps
// during the transfer; when not, it says why.
func (r Report) Conclusive() (bool, string) {
	for _, res := range []ModeResult{r.Legacy, r.FourLane} {
		if n := res.Append.Delivery.Count; n < MinSamples {
			return false, fmt.Sprintf("only %d MsgApp(s) reached the follower during the %s transfer (want >= %d to compare p99)", n, res.Mode, MinSamples)
		}
	}
	return true, ""
}

// AppendP99Ratio is the headline number: legacy MsgApp delivery p99 over
// four-lane MsgApp delivery p99.
func (r Report) AppendP99Ratio() float64 {
	return Ratio(r.Legacy.Append.Delivery.P99, r.FourLane.Append.Delivery.P99)
}
