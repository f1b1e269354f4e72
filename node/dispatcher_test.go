package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
)

// The transports in this file are test doubles on purpose: they cause
// transport failures and stalls on demand, which the real TCP transport can
// only produce by chance. The replica's tests exercise the real one.

// recordingTransport delivers instantly, recording what it got, unless a
// message type is held: then Send blocks until release is closed or the
// context ends.
type recordingTransport struct {
	mu      sync.Mutex
	got     []delivery
	hold    map[raftpb.MessageType]chan struct{}
	entered chan raftpb.MessageType
	fail    func(*raftpb.Message) error
}

type delivery struct {
	lane  lanes.Lane
	group uint64
	m     *raftpb.Message
}

func newRecordingTransport() *recordingTransport {
	return &recordingTransport{hold: map[raftpb.MessageType]chan struct{}{}, entered: make(chan raftpb.MessageType, 4096)}
}

func (t *recordingTransport) holdType(typ raftpb.MessageType) (release func()) {
	ch := make(chan struct{})
	t.mu.Lock()
	t.hold[typ] = ch
	t.mu.Unlock()
	return func() { close(ch) }
}

func (t *recordingTransport) Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	t.mu.Lock()
	ch := t.hold[m.GetType()]
	fail := t.fail
	t.mu.Unlock()
	select {
	case t.entered <- m.GetType():
	default:
	}
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(m); err != nil {
			return err
		}
	}
	t.mu.Lock()
	t.got = append(t.got, delivery{lane: lane, group: group, m: m})
	t.mu.Unlock()
	return nil
}

func (t *recordingTransport) delivered(typ raftpb.MessageType) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, d := range t.got {
		if d.m.GetType() == typ {
			n++
		}
	}
	return n
}

// recordingReporter stands in for raft.RawNode where only the calls matter.
type recordingReporter struct {
	unreachable []uint64
	snapshots   []string
}

func (r *recordingReporter) ReportUnreachable(id uint64) { r.unreachable = append(r.unreachable, id) }
func (r *recordingReporter) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	status := "finish"
	if s == raft.SnapshotFailure {
		status = "failure"
	}
	r.snapshots = append(r.snapshots, fmt.Sprintf("%d:%s", id, status))
}

func msg(typ raftpb.MessageType, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), To: proto.Uint64(to), From: proto.Uint64(1)}
}

func msgApp(to, index uint64, data []byte) *raftpb.Message {
	m := msg(raftpb.MessageType_MsgApp, to)
	m.Index = proto.Uint64(index)
	m.Entries = []*raftpb.Entry{{Index: proto.Uint64(index + 1), Term: proto.Uint64(1), Data: data}}
	return m
}

func newTestDispatcher(t testing.TB, mode lanes.Mode, tr Transport) (*Dispatcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher(DispatcherConfig{Mode: mode, Transport: tr, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, reg
}

// poll waits for cond, failing the test after a generous deadline.
func poll(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func counter(vec string, reg *prometheus.Registry, lane, peer string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != vec {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["lane"] == lane && labels["peer"] == peer {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// TestSnapshotIsolation is the behaviour the flag exists to change: with a
// MsgSnap stuck in the transport, appends and heartbeats to the same peer
// still go out in four-lane mode, while in legacy mode appends wait behind
// the snapshot.
func TestSnapshotIsolation(t *testing.T) {
	for _, mode := range []lanes.Mode{lanes.ModeFourLane, lanes.ModeLegacy} {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newRecordingTransport()
			release := tr.holdType(raftpb.MessageType_MsgSnap)
			d, _ := newTestDispatcher(t, mode, tr)
			d.AddPeer(2)

			d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgSnap, 2)})
			poll(t, "the snapshot to reach the transport", func() bool { return <-tr.entered == raftpb.MessageType_MsgSnap })
			d.Dispatch([]*raftpb.Message{msgApp(2, 10, []byte("x")), msg(raftpb.MessageType_MsgHeartbeat, 2)})

			poll(t, "the heartbeat", func() bool { return tr.delivered(raftpb.MessageType_MsgHeartbeat) == 1 })
			if mode == lanes.ModeFourLane {
				poll(t, "the append", func() bool { return tr.delivered(raftpb.MessageType_MsgApp) == 1 })
			} else {
				// The append sits in the normal lane behind the held
				// snapshot; it must still be queued, not sent.
				if got := tr.delivered(raftpb.MessageType_MsgApp); got != 0 {
					t.Fatalf("legacy: %d appends delivered while the snapshot is stuck, want 0", got)
				}
				if got := len(d.peers[2].lanes[lanes.LaneNormal].q); got != 1 {
					t.Fatalf("legacy: normal lane holds %d messages, want the append (1)", got)
				}
			}
			release()
			poll(t, "everything", func() bool {
				return tr.delivered(raftpb.MessageType_MsgApp) == 1 && tr.delivered(raftpb.MessageType_MsgSnap) == 1
			})
		})
	}
}

// TestFIFOPerLane checks that messages in one (peer, lane) leave in the order
// raft produced them.
func TestFIFOPerLane(t *testing.T) {
	tr := newRecordingTransport()
	d, _ := newTestDispatcher(t, lanes.ModeFourLane, tr)
	d.AddPeer(2)
	const n = 1000
	for i := range n {
		d.Dispatch([]*raftpb.Message{msgApp(2, uint64(i), nil)})
		if i%100 == 99 {
			poll(t, "the lane to drain", func() bool { return len(d.peers[2].lanes[lanes.LaneReplication].q) == 0 })
		}
	}
	poll(t, "all appends", func() bool { return tr.delivered(raftpb.MessageType_MsgApp) == n })
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, got := range tr.got {
		if got.m.GetIndex() != uint64(i) {
			t.Fatalf("delivery %d has index %d, want %d", i, got.m.GetIndex(), i)
		}
	}
}

// TestDropAccountingExact fills every lane while the transport holds all
// traffic and checks enqueued == sent + dropped + queued + in flight, exactly,
// per lane, from the registry.
func TestDropAccountingExact(t *testing.T) {
	types := map[lanes.Lane]raftpb.MessageType{
		lanes.LaneHeartbeat:   raftpb.MessageType_MsgHeartbeat,
		lanes.LaneReplication: raftpb.MessageType_MsgApp,
		lanes.LaneSnapshot:    raftpb.MessageType_MsgSnap,
		lanes.LaneOther:       raftpb.MessageType_MsgProp,
	}
	tr := newRecordingTransport()
	var releases []func()
	for _, typ := range types {
		releases = append(releases, tr.holdType(typ))
	}
	d, reg := newTestDispatcher(t, lanes.ModeFourLane, tr)
	d.AddPeer(2)

	enqueued := map[lanes.Lane]int{}
	for lane, typ := range types {
		d.Dispatch([]*raftpb.Message{msg(typ, 2)})
		enqueued[lane]++
	}
	poll(t, "one message per lane in flight", func() bool { return len(tr.entered) == len(types) })
	const extra = 2000
	for lane, typ := range types {
		for range extra {
			d.Dispatch([]*raftpb.Message{msg(typ, 2)})
			enqueued[lane]++
		}
	}
	for lane := range types {
		capacity := lanes.BufferSize(lane, 0)
		name := lane.String()
		dropped := counter(MetricDispatchDropped, reg, name, "2")
		queued := counter(MetricDispatchDepth, reg, name, "2")
		sent := counter(MetricDispatchSent, reg, name, "2")
		if queued != float64(capacity) {
			t.Errorf("%s: queue depth %v, want the lane's capacity %d", name, queued, capacity)
		}
		if want := float64(enqueued[lane] - capacity - 1); dropped != want {
			t.Errorf("%s: dropped %v, want %v", name, dropped, want)
		}
		if sent != 0 {
			t.Errorf("%s: sent %v while the transport holds everything, want 0", name, sent)
		}
	}
	for _, r := range releases {
		r()
	}
	poll(t, "the lanes to drain", func() bool {
		for lane := range types {
			if counter(MetricDispatchSent, reg, lane.String(), "2") != float64(lanes.BufferSize(lane, 0)+1) {
				return false
			}
		}
		return true
	})
	for lane := range types {
		name := lane.String()
		total := counter(MetricDispatchSent, reg, name, "2") + counter(MetricDispatchDropped, reg, name, "2") + counter(MetricDispatchDepth, reg, name, "2")
		if total != float64(enqueued[lane]) {
			t.Errorf("%s: sent+dropped+queued = %v, want enqueued %d", name, total, enqueued[lane])
		}
	}
}

// TestDropAccountingUnderLoad hammers two peers with mixed traffic while the
// transport is slow and sometimes fails, then checks that every message is
// accounted for exactly once per (peer, lane).
func TestDropAccountingUnderLoad(t *testing.T) {
	for _, mode := range []lanes.Mode{lanes.ModeFourLane, lanes.ModeLegacy} {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newRecordingTransport()
			var inflight atomic.Int64
			tr.fail = func(m *raftpb.Message) error {
				if m.GetIndex()%10 == 7 {
					return errors.New("injected transport failure")
				}
				return nil
			}
			slow := &slowTransport{next: tr, inflight: &inflight}
			reg := prometheus.NewRegistry()
			// Small lanes so both layouts overflow under this load.
			d, err := NewDispatcher(DispatcherConfig{Mode: mode, Transport: slow, Registerer: reg, MaxInflightMsgs: 32})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.AddPeer(2)
			d.AddPeer(3)
			typs := []raftpb.MessageType{
				raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat, raftpb.MessageType_MsgSnap,
				raftpb.MessageType_MsgProp, raftpb.MessageType_MsgVote, raftpb.MessageType_MsgAppResp,
			}
			type key struct {
				lane string
				peer string
			}
			enqueued := map[key]int{}
			rng := rand.New(rand.NewPCG(1, 2))
			rep := &recordingReporter{}
			for i := range 30000 {
				typ := typs[rng.IntN(len(typs))]
				to := uint64(2 + rng.IntN(2))
				m := msg(typ, to)
				m.Index = proto.Uint64(uint64(i))
				lane, _ := lanes.Route(mode, typ)
				enqueued[key{lane.String(), fmt.Sprint(to)}]++
				d.Dispatch([]*raftpb.Message{m})
				d.ApplyReports(rep)
			}
			poll(t, "quiescence", func() bool {
				if inflight.Load() != 0 {
					return false
				}
				for k := range enqueued {
					if counter(MetricDispatchDepth, reg, k.lane, k.peer) != 0 {
						return false
					}
				}
				return inflight.Load() == 0
			})
			var drops, errs float64
			for k, n := range enqueued {
				sent := counter(MetricDispatchSent, reg, k.lane, k.peer)
				dropped := counter(MetricDispatchDropped, reg, k.lane, k.peer)
				failed := counter(MetricDispatchErrors, reg, k.lane, k.peer)
				drops += dropped
				errs += failed
				if got := sent + dropped + failed; got != float64(n) {
					t.Errorf("lane %s peer %s: sent %v + dropped %v + errors %v = %v, want enqueued %d", k.lane, k.peer, sent, dropped, failed, got, n)
				}
			}
			if drops == 0 || errs == 0 {
				t.Errorf("load produced %v drops and %v errors; the test needs both to mean anything", drops, errs)
			}
		})
	}
}

// slowTransport yields on every send so queues fill up under load.
type slowTransport struct {
	next     Transport
	inflight *atomic.Int64
}

func (s *slowTransport) Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if m.GetIndex()%50 == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	return s.next.Send(ctx, lane, group, m)
}

func TestReports(t *testing.T) {
	failAll := func(*raftpb.Message) error { return errors.New("connection refused") }
	tests := []struct {
		name            string
		typ             raftpb.MessageType
		cause           string // "drop" (unknown peer), "error" (transport), "ok"
		wantUnreachable []uint64
		wantSnapshots   []string
	}{
		{"dropped snapshot", raftpb.MessageType_MsgSnap, "drop", []uint64{9}, []string{"9:failure"}},
		{"dropped append", raftpb.MessageType_MsgApp, "drop", []uint64{9}, nil},
		{"dropped heartbeat", raftpb.MessageType_MsgHeartbeat, "drop", []uint64{9}, nil},
		{"failed snapshot", raftpb.MessageType_MsgSnap, "error", []uint64{2}, []string{"2:failure"}},
		{"failed append", raftpb.MessageType_MsgApp, "error", []uint64{2}, nil},
		{"sent snapshot", raftpb.MessageType_MsgSnap, "ok", nil, []string{"2:finish"}},
		{"sent append", raftpb.MessageType_MsgApp, "ok", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newRecordingTransport()
			if tt.cause == "error" {
				tr.fail = failAll
			}
			d, reg := newTestDispatcher(t, lanes.ModeFourLane, tr)
			d.AddPeer(2)
			to := uint64(2)
			if tt.cause == "drop" {
				to = 9
			}
			d.Dispatch([]*raftpb.Message{msg(tt.typ, to)})
			lane, _ := lanes.Route(lanes.ModeFourLane, tt.typ)
			metric := map[string]string{"drop": MetricDispatchDropped, "error": MetricDispatchErrors, "ok": MetricDispatchSent}[tt.cause]
			poll(t, metric, func() bool { return counter(metric, reg, lane.String(), fmt.Sprint(to)) == 1 })
			rep := &recordingReporter{}
			if tt.cause != "drop" {
				if tt.wantUnreachable != nil || tt.wantSnapshots != nil {
					<-d.Pending()
				}
			}
			d.ApplyReports(rep)
			if fmt.Sprint(rep.unreachable) != fmt.Sprint(tt.wantUnreachable) {
				t.Errorf("ReportUnreachable calls = %v, want %v", rep.unreachable, tt.wantUnreachable)
			}
			if fmt.Sprint(rep.snapshots) != fmt.Sprint(tt.wantSnapshots) {
				t.Errorf("ReportSnapshot calls = %v, want %v", rep.snapshots, tt.wantSnapshots)
			}
			// Reports are handed over once.
			again := &recordingReporter{}
			d.ApplyReports(again)
			if len(again.unreachable)+len(again.snapshots) != 0 {
				t.Errorf("second ApplyReports repeated reports: %+v", again)
			}
		})
	}
}

// TestDroppedSnapshotUnsticksRaft pins the upstream bug with a real RawNode:
// a leader that sent MsgSnap puts the follower in snapshot state and sends it
// nothing else until told how the snapshot went. When the dispatcher drops
// the MsgSnap, its report must move the follower out of snapshot state.
func TestDroppedSnapshotUnsticksRaft(t *testing.T) {
	storage := raft.NewMemoryStorage()
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(10),
		Term:      proto.Uint64(1),
		ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}},
	}}
	if err := storage.ApplySnapshot(snap); err != nil {
		t.Fatal(err)
	}
	rn, err := raft.NewRawNode(&raft.Config{
		ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: storage,
		MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: discardRaftLogger{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	drainReady(t, rn, storage)
	resp := msg(raftpb.MessageType_MsgVoteResp, 1)
	resp.From = proto.Uint64(2)
	resp.Term = proto.Uint64(rn.BasicStatus().GetTerm())
	if err := rn.Step(resp); err != nil {
		t.Fatal(err)
	}
	drainReady(t, rn, storage)
	if rn.BasicStatus().RaftState != raft.StateLeader {
		t.Fatalf("node 1 is %s, want leader", rn.BasicStatus().RaftState)
	}
	// The follower rejects the append and says its log is empty: the leader
	// has compacted everything it would need, so it must send a snapshot.
	reject := msg(raftpb.MessageType_MsgAppResp, 1)
	reject.From = proto.Uint64(2)
	reject.Term = proto.Uint64(rn.BasicStatus().GetTerm())
	reject.Reject = proto.Bool(true)
	reject.Index = proto.Uint64(10)
	reject.RejectHint = proto.Uint64(0)
	if err := rn.Step(reject); err != nil {
		t.Fatal(err)
	}
	if got := rn.Status().Progress[2].State.String(); got != "StateSnapshot" {
		t.Fatalf("follower progress is %s, want StateSnapshot", got)
	}
	rd := rn.Ready()
	var sawSnap bool
	for _, m := range rd.Messages {
		sawSnap = sawSnap || m.GetType() == raftpb.MessageType_MsgSnap
	}
	if !sawSnap {
		t.Fatalf("leader sent no MsgSnap: %v", rd.Messages)
	}

	// The snapshot lane to peer 2 is full, so the MsgSnap is dropped.
	tr := newRecordingTransport()
	release := tr.holdType(raftpb.MessageType_MsgSnap)
	defer release()
	d, _ := newTestDispatcher(t, lanes.ModeFourLane, tr)
	d.AddPeer(2)
	d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgSnap, 2)})
	poll(t, "a snapshot in flight", func() bool { return len(tr.entered) == 1 })
	for range lanes.SnapshotBuffer {
		d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgSnap, 2)})
	}
	poll(t, "the snapshot lane to fill", func() bool { return len(d.peers[2].lanes[lanes.LaneSnapshot].q) == lanes.SnapshotBuffer })
	d.Dispatch(rd.Messages)
	rn.Advance(rd)
	if got := testutil.ToFloat64(d.metrics.dropped.WithLabelValues("snapshot", "2")); got != 1 {
		t.Fatalf("snapshot drops = %v, want 1", got)
	}
	if got := rn.Status().Progress[2].State.String(); got != "StateSnapshot" {
		t.Fatalf("before reports: follower progress is %s, want StateSnapshot still", got)
	}
	d.ApplyReports(rn)
	if got := rn.Status().Progress[2].State.String(); got != "StateProbe" {
		t.Fatalf("after the dropped-snapshot report: follower progress is %s, want StateProbe", got)
	}
}

func drainReady(t *testing.T, rn *raft.RawNode, storage *raft.MemoryStorage) {
	t.Helper()
	for rn.HasReady() {
		rd := rn.Ready()
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := storage.SetHardState(rd.HardState); err != nil {
				t.Fatal(err)
			}
		}
		if err := storage.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		rn.Advance(rd)
	}
}

type discardRaftLogger struct{}

func (discardRaftLogger) Debug(...any)              {}
func (discardRaftLogger) Debugf(string, ...any)     {}
func (discardRaftLogger) Error(...any)              {}
func (discardRaftLogger) Errorf(string, ...any)     {}
func (discardRaftLogger) Info(...any)               {}
func (discardRaftLogger) Infof(string, ...any)      {}
func (discardRaftLogger) Warning(...any)            {}
func (discardRaftLogger) Warningf(string, ...any)   {}
func (discardRaftLogger) Fatal(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardRaftLogger) Fatalf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
func (discardRaftLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardRaftLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }

// TestRemovePeerMidSend removes a peer while its workers are blocked inside
// the transport: no panic, no leaked goroutine (goleak in TestMain), queued
// messages counted as dropped, later messages dropped too.
func TestRemovePeerMidSend(t *testing.T) {
	for _, mode := range []lanes.Mode{lanes.ModeFourLane, lanes.ModeLegacy} {
		t.Run(mode.String(), func(t *testing.T) {
			tr := newRecordingTransport()
			for _, typ := range []raftpb.MessageType{raftpb.MessageType_MsgApp, raftpb.MessageType_MsgHeartbeat, raftpb.MessageType_MsgSnap} {
				defer tr.holdType(typ)()
			}
			d, reg := newTestDispatcher(t, mode, tr)
			d.AddPeer(2)
			d.AddPeer(3)
			for i := range 10 {
				d.Dispatch([]*raftpb.Message{msgApp(2, uint64(i), nil), msg(raftpb.MessageType_MsgHeartbeat, 2), msg(raftpb.MessageType_MsgSnap, 2)})
			}
			busyLanes := map[lanes.Mode]int{lanes.ModeFourLane: 3, lanes.ModeLegacy: 2}[mode]
			poll(t, "workers to be mid-send", func() bool { return len(tr.entered) == busyLanes })
			d.RemovePeer(2)
			d.Dispatch([]*raftpb.Message{msgApp(2, 99, nil), msg(raftpb.MessageType_MsgHeartbeat, 2)})
			var total float64
			for _, l := range mode.Lanes() {
				total += counter(MetricDispatchDropped, reg, l.String(), "2")
				if depth := counter(MetricDispatchDepth, reg, l.String(), "2"); depth != 0 {
					t.Errorf("%s lane depth after removal = %v, want 0", l, depth)
				}
			}
			if total != 32 {
				t.Errorf("dropped for removed peer = %v, want all 32 messages", total)
			}
			// The other peer still works.
			d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgVote, 3)})
			poll(t, "the vote to peer 3", func() bool { return tr.delivered(raftpb.MessageType_MsgVote) == 1 })
			// Re-adding the peer starts fresh workers.
			d.AddPeer(2)
			d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgVote, 2)})
			poll(t, "the vote to re-added peer 2", func() bool { return tr.delivered(raftpb.MessageType_MsgVote) == 2 })
		})
	}
}

func TestCloseStopsEverything(t *testing.T) {
	tr := newRecordingTransport()
	defer tr.holdType(raftpb.MessageType_MsgApp)()
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher(DispatcherConfig{Mode: lanes.ModeFourLane, Transport: tr, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	d.AddPeer(2)
	d.Dispatch([]*raftpb.Message{msgApp(2, 1, nil), msgApp(2, 2, nil)})
	d.Close()
	d.Dispatch([]*raftpb.Message{msgApp(2, 3, nil)})
	d.AddPeer(4)
	if got := counter(MetricDispatchDropped, reg, "replication", "2"); got != 3 {
		t.Errorf("dropped after close = %v, want 3", got)
	}
	if len(d.peers) != 0 {
		t.Errorf("AddPeer after Close started workers for %d peers", len(d.peers))
	}
}

func TestNewDispatcherErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newRecordingTransport()
	if _, err := NewDispatcher(DispatcherConfig{Transport: tr}); err == nil {
		t.Error("no registerer: want error")
	}
	if _, err := NewDispatcher(DispatcherConfig{Registerer: reg}); err == nil {
		t.Error("no transport: want error")
	}
	if _, err := NewDispatcher(DispatcherConfig{Registerer: reg, Transport: tr, Mode: 7}); err == nil {
		t.Error("bad mode: want error")
	}
	if _, err := NewDispatcher(DispatcherConfig{Registerer: reg, Transport: tr}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewDispatcher(DispatcherConfig{Registerer: reg, Transport: tr}); err == nil {
		t.Error("registering twice on one registry: want error")
	}
}

func TestGauges(t *testing.T) {
	for _, mode := range []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane} {
		_, reg := newTestDispatcher(t, mode, newRecordingTransport())
		want := map[lanes.Mode]float64{lanes.ModeLegacy: 0, lanes.ModeFourLane: 1}[mode]
		mfs, _ := reg.Gather()
		var got float64 = -1
		var waitLanes []string
		for _, mf := range mfs {
			switch mf.GetName() {
			case MetricLanesEnabled:
				got = mf.GetMetric()[0].GetGauge().GetValue()
			case MetricDispatchWait:
				for _, m := range mf.GetMetric() {
					waitLanes = append(waitLanes, m.GetLabel()[0].GetValue())
				}
			}
		}
		if got != want {
			t.Errorf("%s: %s = %v, want %v", mode, MetricLanesEnabled, got, want)
		}
		if len(waitLanes) != len(mode.Lanes()) {
			t.Errorf("%s: queue wait histogram rows for lanes %v, want one per lane of the layout", mode, waitLanes)
		}
	}
	for _, mode := range []lanes.SyncMode{lanes.SyncModeSync, lanes.SyncModeNoSync} {
		reg := prometheus.NewRegistry()
		if err := NewSyncModeGauge(reg, mode); err != nil {
			t.Fatal(err)
		}
		mfs, _ := reg.Gather()
		rows := map[string]float64{}
		for _, m := range mfs[0].GetMetric() {
			rows[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
		want := map[string]float64{"sync": 0, "nosync": 0}
		want[mode.String()] = 1
		if fmt.Sprint(rows) != fmt.Sprint(want) {
			t.Errorf("sync mode %s: rows %v, want %v", mode, rows, want)
		}
	}
}

// TestInjectDrops checks that injected drops take the ordinary drop path:
// counted in the lane's metric and reported to raft.
func TestInjectDrops(t *testing.T) {
	tr := newRecordingTransport()
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher(DispatcherConfig{
		Mode: lanes.ModeFourLane, Transport: tr, Registerer: reg,
		InjectDrops: DropInjection{Lane: lanes.LaneHeartbeat, Every: 3},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.AddPeer(2)
	for range 9 {
		d.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgHeartbeat, 2), msgApp(2, 1, nil)})
	}
	rep := &recordingReporter{}
	d.ApplyReports(rep)
	if got := counter(MetricDispatchDropped, reg, "heartbeat", "2"); got != 3 {
		t.Errorf("heartbeat drops = %v, want 3 (every third of 9)", got)
	}
	if got := counter(MetricDispatchDropped, reg, "replication", "2"); got != 0 {
		t.Errorf("replication drops = %v, want 0: injection is for one lane only", got)
	}
	if len(rep.unreachable) != 3 {
		t.Errorf("unreachable reports = %v, want 3", rep.unreachable)
	}
	poll(t, "the heartbeats that were not dropped", func() bool { return tr.delivered(raftpb.MessageType_MsgHeartbeat) == 6 })
}

func TestParseDropInjection(t *testing.T) {
	tests := []struct {
		in      string
		want    DropInjection
		wantErr bool
	}{
		{"", DropInjection{}, false},
		{"heartbeat:20", DropInjection{Lane: lanes.LaneHeartbeat, Every: 20}, false},
		{"snapshot:1", DropInjection{Lane: lanes.LaneSnapshot, Every: 1}, false},
		{"heartbeat", DropInjection{}, true},
		{"heartbeat:0", DropInjection{}, true},
		{"heartbeat:-1", DropInjection{}, true},
		{"hb:5", DropInjection{}, true},
	}
	for _, tt := range tests {
		got, err := ParseDropInjection(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDropInjection(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
