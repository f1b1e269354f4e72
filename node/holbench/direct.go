package holbench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/transport"
)

// Defaults of Config.
const (
	DefaultSnapshotBytes      = 64 << 20
	DefaultLinkBytesPerSecond = 32 << 20
	DefaultAppendInterval     = 5 * time.Millisecond
	DefaultEntryBytes         = 1 << 10
	DefaultHeartbeatInterval  = 100 * time.Millisecond
	DefaultElectionTimeout    = time.Second
	DefaultWarmup             = 500 * time.Millisecond
	DefaultTail               = 300 * time.Millisecond
	DefaultGroups             = 4
)

// The two nodes of the direct scenario.
const (
	leaderID   = 1
	followerID = 2
)

// Config describes the scenario. Zero fields take the Default* values.
type Config struct {
	// SnapshotBytes is the size of the snapshot sent to the follower.
	SnapshotBytes int
	// LinkBytesPerSecond is the bandwidth from the leader to the follower,
	// shared by all of the leader's connections to it.
	LinkBytesPerSecond int64
	// LinkChunk is the piece size the link releases bytes in.
	LinkChunk int
	// AppendInterval is the time between two MsgApps (steady write load);
	// EntryBytes the size of the entry each carries.
	AppendInterval time.Duration
	EntryBytes     int
	// HeartbeatInterval is the time between two heartbeats.
	HeartbeatInterval time.Duration
	// ElectionTimeout is how long a follower waits without hearing from
	// the leader before it campaigns.
	ElectionTimeout time.Duration
	// Warmup is the steady load before the snapshot; Tail the steady load
	// after it arrived.
	Warmup, Tail time.Duration
	// Groups is the number of raft groups each replica of the cluster
	// scenario runs: group 0 sends the snapshot, the others keep writing.
	// 1 is the single-group cluster. The direct scenario has no raft and
	// ignores it.
	Groups int
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.SnapshotBytes, DefaultSnapshotBytes)
	def(&c.LinkChunk, DefaultLinkChunk)
	def(&c.EntryBytes, DefaultEntryBytes)
	def(&c.Groups, DefaultGroups)
	if c.LinkBytesPerSecond == 0 {
		c.LinkBytesPerSecond = DefaultLinkBytesPerSecond
	}
	defDur(&c.AppendInterval, DefaultAppendInterval)
	defDur(&c.HeartbeatInterval, DefaultHeartbeatInterval)
	defDur(&c.ElectionTimeout, DefaultElectionTimeout)
	defDur(&c.Warmup, DefaultWarmup)
	defDur(&c.Tail, DefaultTail)
	switch {
	case c.SnapshotBytes < 0, c.LinkChunk < 0, c.EntryBytes < 0, c.LinkBytesPerSecond < 0, c.Groups < 0:
		return c, errors.New("holbench config: sizes and rates must not be negative")
	case c.AppendInterval < 0, c.HeartbeatInterval < 0, c.ElectionTimeout < 0, c.Warmup < 0, c.Tail < 0:
		return c, errors.New("holbench config: durations must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

func (c Config) setup(link *Link) Setup {
	return Setup{
		SnapshotBytes:      c.SnapshotBytes,
		LinkBytesPerSecond: c.LinkBytesPerSecond,
		LinkChunkBytes:     c.LinkChunk,
		LinkChunkTime:      link.ChunkTime(),
		AppendInterval:     c.AppendInterval,
		HeartbeatInterval:  c.HeartbeatInterval,
		ElectionTimeout:    c.ElectionTimeout,
	}
}

// transferTimeout bounds one run: the snapshot at the link's rate several
// times over, plus slack for a slow machine.
func (c Config) transferTimeout() time.Duration {
	wire := time.Duration(float64(c.SnapshotBytes) / float64(c.LinkBytesPerSecond) * float64(time.Second))
	return c.Warmup + 4*wire + 30*time.Second
}

// RunDirect runs the scenario without raft, in both layouts, one after the
// other: a leader-side Dispatcher and transport.TCP send a steady stream of
// MsgApp and heartbeats to a follower-side transport.TCP over a
// bandwidth-limited Link, and one large MsgSnap is dispatched in the middle.
// It is the situation of a node whose lanes to one peer carry a snapshot
// while appends keep coming for that peer (another raft group's, in a
// multi-raft store), measured exactly: every message is timed from Dispatch
// to the follower's handler.
func RunDirect(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	link, err := NewLink(cfg.LinkBytesPerSecond, cfg.LinkChunk)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Scenario: "direct", Setup: cfg.setup(link), Notes: []string{
		"queue wait: Dispatch to the start of the transport send, per message",
		"delivery: Dispatch to arrival in the follower's handler, per message",
		"elections: heartbeat silences longer than the election timeout (no raft runs here)",
	}}
	snapshot := snapshotMessage(cfg.SnapshotBytes)
	for _, mode := range []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane} {
		cfg.Logger.Info("running head-of-line scenario", "scenario", "direct", "mode", mode.String())
		// A fresh link per mode, so the second run does not inherit the
		// first one's token debt.
		link, _ := NewLink(cfg.LinkBytesPerSecond, cfg.LinkChunk)
		res, err := runDirect(ctx, mode, cfg, link, snapshot)
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", mode, err)
		}
		if mode == lanes.ModeLegacy {
			rep.Legacy = res
		} else {
			rep.FourLane = res
		}
	}
	return rep, nil
}

// snapshotMessage builds the MsgSnap; its data is incompressible so nothing
// on the path can shortcut it.
func snapshotMessage(size int) *raftpb.Message {
	data := make([]byte, size)
	var x uint64 = 0x9e3779b97f4a7c15
	for i := range data {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		data[i] = byte(x)
	}
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgSnap.Enum(),
		From: proto.Uint64(leaderID),
		To:   proto.Uint64(followerID),
		Term: proto.Uint64(1),
		Snapshot: &raftpb.Snapshot{
			Data: data,
			Metadata: &raftpb.SnapshotMetadata{
				Index:     proto.Uint64(1),
				Term:      proto.Uint64(1),
				ConfState: &raftpb.ConfState{Voters: []uint64{leaderID, followerID}},
			},
		},
	}
}

// msgKey identifies one timed message; seq travels in the Index field.
type msgKey struct {
	typ raftpb.MessageType
	seq uint64
}

type stamps struct {
	enqueued, started, delivered time.Time
}

// recorder times every message from Dispatch to the receiver's handler.
type recorder struct {
	mu        sync.Mutex
	msgs      map[msgKey]*stamps
	beats     []time.Time // heartbeat arrivals
	snapshots chan time.Time
}

func newRecorder() *recorder {
	return &recorder{msgs: make(map[msgKey]*stamps), snapshots: make(chan time.Time, 1)}
}

func (r *recorder) enqueued(m *raftpb.Message, at time.Time) {
	r.mu.Lock()
	r.msgs[msgKey{m.GetType(), m.GetIndex()}] = &stamps{enqueued: at}
	r.mu.Unlock()
}

func (r *recorder) started(m *raftpb.Message, at time.Time) {
	r.mu.Lock()
	if s := r.msgs[msgKey{m.GetType(), m.GetIndex()}]; s != nil && s.started.IsZero() {
		s.started = at
	}
	r.mu.Unlock()
}

// deliver is the follower transport's handler.
func (r *recorder) deliver(_ context.Context, _ uint64, m *raftpb.Message) error {
	now := time.Now()
	if m.GetType() == raftpb.MessageType_MsgSnap {
		select {
		case r.snapshots <- now:
		default:
		}
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.msgs[msgKey{m.GetType(), m.GetIndex()}]; s != nil && s.delivered.IsZero() {
		s.delivered = now
	}
	if m.GetType() == raftpb.MessageType_MsgHeartbeat {
		r.beats = append(r.beats, now)
	}
	return nil
}

// traffic summarises messages of one type enqueued in [from, to].
func (r *recorder) traffic(typ raftpb.MessageType, lane lanes.Lane, from, to time.Time) Traffic {
	r.mu.Lock()
	defer r.mu.Unlock()
	var wait, delivery []time.Duration
	lost := 0
	for k, s := range r.msgs {
		if k.typ != typ || s.enqueued.Before(from) || s.enqueued.After(to) {
			continue
		}
		if s.delivered.IsZero() {
			lost++
			continue
		}
		if !s.started.IsZero() {
			wait = append(wait, s.started.Sub(s.enqueued))
		}
		delivery = append(delivery, s.delivered.Sub(s.enqueued))
	}
	return Traffic{Lane: lane.String(), QueueWait: summarize(wait), Delivery: summarize(delivery), Lost: lost}
}

// heartbeatGaps returns the longest silence between heartbeat arrivals
// overlapping [from, to], and how many silences exceeded limit.
func (r *recorder) heartbeatGaps(from, to time.Time, limit time.Duration) (time.Duration, int) {
	r.mu.Lock()
	beats := slices.Clone(r.beats)
	r.mu.Unlock()
	slices.SortFunc(beats, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	over := 0
	prev := time.Time{}
	for _, b := range append(beats, to) {
		if !prev.IsZero() && b.After(from) && prev.Before(to) {
			gap := b.Sub(prev)
			longest = max(longest, gap)
			if gap > limit {
				over++
			}
		}
		prev = b
		if b.After(to) {
			break
		}
	}
	return longest, over
}

// timedTransport notes when the dispatcher's worker starts each send.
type timedTransport struct {
	node.Transport
	rec *recorder
}

func (t timedTransport) Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	t.rec.started(m, time.Now())
	return t.Transport.Send(ctx, lane, group, m)
}

// reportCounter stands in for raft: it only counts what the dispatcher
// reports.
type reportCounter struct {
	unreachable     int
	snapshotResults map[raft.SnapshotStatus]int
}

func (c *reportCounter) ReportUnreachable(uint64) { c.unreachable++ }
func (c *reportCounter) ReportSnapshot(_ uint64, s raft.SnapshotStatus) {
	if c.snapshotResults == nil {
		c.snapshotResults = make(map[raft.SnapshotStatus]int)
	}
	c.snapshotResults[s]++
}

func runDirect(ctx context.Context, mode lanes.Mode, cfg Config, link *Link, snapshot *raftpb.Message) (ModeResult, error) {
	rec := newRecorder()
	rx, err := transport.New(transport.Config{
		ID:               followerID,
		Listen:           "127.0.0.1:0",
		Handler:          rec.deliver,
		MaxSnapshotBytes: int64(max(cfg.SnapshotBytes, transport.DefaultMaxSnapshotBytes)),
		Logger:           cfg.Logger,
	})
	if err != nil {
		return ModeResult{}, err
	}
	defer rx.Close()
	tx, err := transport.New(transport.Config{
		ID:      leaderID,
		Listen:  "127.0.0.1:0",
		Peers:   map[uint64]string{followerID: rx.Addr().String()},
		Handler: func(context.Context, uint64, *raftpb.Message) error { return nil },
		Dial:    linkDialer(link),
		Logger:  cfg.Logger,
	})
	if err != nil {
		return ModeResult{}, err
	}
	defer tx.Close()
	// The follower accepts raft connections from members only.
	if err := rx.AddPeer(leaderID, tx.Addr().String()); err != nil {
		return ModeResult{}, err
	}
	reg := prometheus.NewRegistry()
	d, err := node.NewDispatcher(node.DispatcherConfig{
		Mode:       mode,
		Transport:  timedTransport{Transport: tx, rec: rec},
		Registerer: reg,
		Logger:     cfg.Logger,
	})
	if err != nil {
		return ModeResult{}, err
	}
	defer d.Close()
	d.AddPeer(followerID)

	var (
		reports   reportCounter
		seq       uint64
		entry     = make([]byte, cfg.EntryBytes)
		snapStart time.Time
		snapDone  time.Time
		tail      <-chan time.Time
	)
	dispatch := func(m *raftpb.Message) {
		rec.enqueued(m, time.Now())
		d.Dispatch([]*raftpb.Message{m})
		d.ApplyReports(&reports)
	}
	appends := time.NewTicker(cfg.AppendInterval)
	defer appends.Stop()
	beats := time.NewTicker(cfg.HeartbeatInterval)
	defer beats.Stop()
	start := time.NewTimer(cfg.Warmup)
	defer start.Stop()
	deadline := time.NewTimer(cfg.transferTimeout())
	defer deadline.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return ModeResult{}, context.Cause(ctx)
		case <-deadline.C:
			return ModeResult{}, fmt.Errorf("the %d-byte snapshot did not arrive within %v", cfg.SnapshotBytes, cfg.transferTimeout())
		case <-appends.C:
			seq++
			dispatch(&raftpb.Message{
				Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(leaderID), To: proto.Uint64(followerID),
				Term: proto.Uint64(1), Index: proto.Uint64(seq), LogTerm: proto.Uint64(1), Commit: proto.Uint64(seq),
				Entries: []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(seq + 1), Data: entry}},
			})
		case <-beats.C:
			seq++
			dispatch(&raftpb.Message{
				Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(leaderID), To: proto.Uint64(followerID),
				Term: proto.Uint64(1), Index: proto.Uint64(seq), Commit: proto.Uint64(seq),
			})
		case <-start.C:
			snapStart = time.Now()
			d.Dispatch([]*raftpb.Message{snapshot})
			d.ApplyReports(&reports)
		case snapDone = <-rec.snapshots:
			tail = time.After(cfg.Tail)
		case <-tail:
			done = true
		case <-d.Pending():
			d.ApplyReports(&reports)
		}
	}

	appendLane, _ := lanes.Route(mode, raftpb.MessageType_MsgApp)
	beatLane, _ := lanes.Route(mode, raftpb.MessageType_MsgHeartbeat)
	res := ModeResult{
		Mode:             mode.String(),
		Append:           rec.traffic(raftpb.MessageType_MsgApp, appendLane, snapStart, snapDone),
		Heartbeat:        rec.traffic(raftpb.MessageType_MsgHeartbeat, beatLane, snapStart, snapDone),
		SnapshotBytes:    cfg.SnapshotBytes,
		SnapshotTransfer: snapDone.Sub(snapStart),
	}
	res.MaxHeartbeatGap, res.Elections = rec.heartbeatGaps(snapStart, snapDone, cfg.ElectionTimeout)
	if res.Dropped, err = counterByLane(reg, node.MetricDispatchDropped); err != nil {
		return ModeResult{}, err
	}
	if res.Errors, err = counterByLane(reg, node.MetricDispatchErrors); err != nil {
		return ModeResult{}, err
	}
	return res, nil
}

// linkDialer dials TCP and puts the connection behind link.
func linkDialer(link *Link) transport.DialFunc {
	return func(ctx context.Context, _ uint64, _ lanes.Lane, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return link.Wrap(c), nil
	}
}

// counterByLane sums a counter family from g by its lane label.
func counterByLane(g prometheus.Gatherer, name string) (map[string]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather %s: %w", name, err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "lane" {
					out[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out, nil
}
