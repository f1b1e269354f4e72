package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/loadgen"
	"github.com/lanectl/lanectl/targets"
)

// Summary is what a demo found. It is filled as far as the demo got: a
// refused rollout has one.
type Summary struct {
	// Verdict is pass when the rollout completed with every soak passed,
	// fail when it was refused.
	Verdict gates.Verdict `json:"verdict"`
	Reason  string        `json:"reason"`
	Timing  Timing        `json:"-"`
	// Replicas in rollout order, with the flag as each one's own /metrics
	// showed it at the end.
	Replicas []ReplicaSummary `json:"replicas"`
	// Soaks are the decided soaks, in order.
	Soaks []SoakSummary `json:"soaks"`
	// Before is the legacy baseline, After the last soak window, over the
	// replicas that had the flag in it.
	Before Phase `json:"before"`
	After  Phase `json:"after"`
	// Lanes compares the phases lane by lane; a lane that does not exist
	// in a phase's layout has no values there.
	Lanes []LaneSummary `json:"lanes"`
	// LeaderChanges is the most leader changes one replica saw over the
	// whole demo, restarts included; Terms is the raft term at the start
	// of the baseline and at the end.
	LeaderChanges float64    `json:"leader_changes"`
	Terms         [2]float64 `json:"terms"`
	// Transfers is the head-of-line comparison: the other groups'
	// appends to the slow follower during snapshot transfers, legacy vs
	// four-lane.
	Transfers TransferSummary `json:"snapshot_transfers"`
	// Injected names the replica that was given heartbeat drops.
	Injected string         `json:"injected_heartbeat_drops,omitempty"`
	Load     loadgen.Result `json:"load"`
	Elapsed  time.Duration  `json:"-"`
	// Plan is the plan file as it was written (the file itself is removed).
	Plan string `json:"plan"`
}

// MarshalJSON writes durations as seconds.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain Summary
	return json.Marshal(struct {
		plain
		Elapsed float64 `json:"elapsed_seconds"`
		Soak    float64 `json:"soak_window_seconds"`
	}{plain(s), s.Elapsed.Seconds(), s.Timing.Soak.Seconds()})
}

// ReplicaSummary is one replica at the end of the demo.
type ReplicaSummary struct {
	Name  string `json:"name"`
	Stage string `json:"stage"`
	// FlagOn is the lanes gauge (targets.LanectlLanesEnabled) on the replica's
	// own /metrics at the end; nil when it could not be read.
	FlagOn    *bool     `json:"flag_on"`
	EnabledAt time.Time `json:"enabled_at,omitzero"`
}

// SoakSummary is one decided soak.
type SoakSummary struct {
	Replicas []string      `json:"replicas"`
	Verdict  gates.Verdict `json:"verdict"`
	Reason   string        `json:"reason"`
	Window   gates.Window  `json:"window"`
	// Failed names the gates that did not pass.
	Failed []string `json:"failed_gates,omitempty"`
}

// TransferSummary is what the appends of the other raft groups to the slow
// follower went through while a snapshot of the snapshot group travelled to
// it from the same leader, over the same shaped link. Each transfer counts
// for the layout of the leader that sent it (the lane its MsgSnap was
// queued in), wherever in the rollout it happened.
type TransferSummary struct {
	Follower           string `json:"follower"`
	Group              uint64 `json:"snapshot_group"`
	Groups             int    `json:"groups"`
	LinkBytesPerSecond int64  `json:"link_bytes_per_second"`
	// Forced and Failed count the demo's forced snapshots; LastError is
	// the last failure's reason.
	Forced    int    `json:"forced"`
	Failed    int    `json:"failed"`
	LastError string `json:"last_error,omitempty"`
	// Abandoned counts transfers that were sent but never arrived (a
	// restart cut them off); they are not in either layout.
	Abandoned int            `json:"abandoned"`
	Legacy    TransferLayout `json:"legacy"`
	FourLane  TransferLayout `json:"four_lane"`
	// Ratio is the legacy delivery p99 over the four-lane one; nil unless
	// both layouts delivered appends.
	Ratio *float64 `json:"delivery_p99_ratio"`
}

// TransferLayout is the transfers sent by leaders on one layout. Delivery
// is from the leader's dispatcher accepting the append (the Enqueued hook)
// to the follower's transport having it whole (its Trace hook), for every
// append of another group queued while a transfer was in flight; nil when
// there was none.
type TransferLayout struct {
	Layout    string `json:"layout"`
	Transfers int    `json:"transfers"`
	// SnapshotBytes is the largest snapshot's data; TransferP50 the median
	// time from its MsgSnap being queued to its arrival.
	SnapshotBytes int      `json:"snapshot_bytes"`
	TransferP50   *float64 `json:"transfer_p50_seconds"`
	Appends       int      `json:"appends"`
	DeliveryP50   *float64 `json:"delivery_p50_seconds"`
	DeliveryP99   *float64 `json:"delivery_p99_seconds"`
	DeliveryMax   *float64 `json:"delivery_max_seconds"`
	// Lost counts appends queued during a transfer that never arrived
	// (dropped, or cut off by a restart).
	Lost int `json:"lost"`
}

// Phase is a stretch of the demo measured for the summary.
type Phase struct {
	Window   gates.Window `json:"window"`
	Layout   string       `json:"layout"`
	Replicas []string     `json:"replicas"`
	// LeaderChanges is the most leader changes one of Replicas saw.
	LeaderChanges float64 `json:"leader_changes"`
}

// LaneSummary is one lane's numbers before and after the flag. Nil values
// mean the lane does not exist in that phase's layout, or (for p99) carried
// no messages.
type LaneSummary struct {
	Lane string `json:"lane"`
	// SentRate is messages handed to the transport per second, so
	// phases of different lengths compare.
	SentRateBefore  *float64 `json:"sent_per_second_before"`
	SentRateAfter   *float64 `json:"sent_per_second_after"`
	DropsBefore     *float64 `json:"drops_before"`
	DropsAfter      *float64 `json:"drops_after"`
	QueueWaitBefore *float64 `json:"queue_wait_p99_before_seconds"`
	QueueWaitAfter  *float64 `json:"queue_wait_p99_after_seconds"`
}

// phaseNumbers are one phase's per-lane numbers.
type phaseNumbers struct {
	sent, drops, p99 map[string]float64
	leaderChanges    float64
}

func selector(replicas []string) string {
	return fmt.Sprintf(`node_id=~%q`, strings.Join(replicas, "|"))
}

// promRange writes d as a PromQL duration in milliseconds, which every
// window of the demo can be expressed in exactly.
func promRange(d time.Duration) string {
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}

func measure(ctx context.Context, q gates.Querier, p Phase) (phaseNumbers, error) {
	sel, rng, at := selector(p.Replicas), promRange(p.Window.Duration()), p.Window.End
	byLane := func(expr string) (map[string]float64, error) {
		vec, _, err := q.Query(ctx, expr, at)
		if err != nil {
			return nil, fmt.Errorf("summary query %s: %w", expr, err)
		}
		out := map[string]float64{}
		for _, s := range vec {
			if !math.IsNaN(s.Value) {
				out[s.Labels["lane"]] = s.Value
			}
		}
		return out, nil
	}
	var n phaseNumbers
	var err error
	if n.sent, err = byLane(fmt.Sprintf(`sum by (lane) (rate(%s{%s}[%s]))`, targets.LanectlSent, sel, rng)); err != nil {
		return n, err
	}
	if n.drops, err = byLane(fmt.Sprintf(`sum by (lane) (increase(%s{%s}[%s]))`, targets.LanectlDropped, sel, rng)); err != nil {
		return n, err
	}
	if n.p99, err = byLane(fmt.Sprintf(`histogram_quantile(0.99, sum by (lane, le) (rate(%s_bucket{%s}[%s])))`, targets.LanectlQueueWait, sel, rng)); err != nil {
		return n, err
	}
	lc, err := byLane(fmt.Sprintf(`max(increase(%s{%s}[%s]))`, targets.LanectlLeaderChanges, sel, rng))
	if err != nil {
		return n, err
	}
	n.leaderChanges = math.Round(lc[""])
	return n, nil
}

// scalarAt reads one number (the first sample) at t; NaN when there is none.
func scalarAt(ctx context.Context, q gates.Querier, expr string, at time.Time) (float64, error) {
	vec, _, err := q.Query(ctx, expr, at)
	if err != nil {
		return math.NaN(), fmt.Errorf("summary query %s: %w", expr, err)
	}
	if len(vec) == 0 {
		return math.NaN(), nil
	}
	return vec[0].Value, nil
}

// laneRows merges the two phases' numbers, legacy lanes first.
func laneRows(before, after phaseNumbers) []LaneSummary {
	order := []string{
		lanes.LaneHeartbeat.String(), lanes.LaneNormal.String(),
		lanes.LaneReplication.String(), lanes.LaneSnapshot.String(), lanes.LaneOther.String(),
	}
	get := func(m map[string]float64, lane string, round bool) *float64 {
		v, ok := m[lane]
		if !ok {
			return nil
		}
		if round {
			// increase() extrapolates to the window's edges; messages are
			// whole.
			v = math.Round(v)
		}
		return &v
	}
	var rows []LaneSummary
	for _, l := range order {
		_, inBefore := before.sent[l]
		_, inAfter := after.sent[l]
		if !inBefore && !inAfter {
			continue
		}
		rows = append(rows, LaneSummary{
			Lane:            l,
			SentRateBefore:  get(before.sent, l, false),
			SentRateAfter:   get(after.sent, l, false),
			DropsBefore:     get(before.drops, l, true),
			DropsAfter:      get(after.drops, l, true),
			QueueWaitBefore: get(before.p99, l, false),
			QueueWaitAfter:  get(after.p99, l, false),
		})
	}
	return rows
}

func failedGates(r gates.Result) []string {
	var out []string
	for _, g := range r.Gates {
		if g.Verdict != gates.Pass {
			out = append(out, g.Name)
		}
	}
	slices.Sort(out)
	return out
}
