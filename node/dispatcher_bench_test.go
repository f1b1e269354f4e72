package node

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
)

// parkedTransport holds every message until the benchmark ends, so the lane
// is drained only by the benchmark itself (with the timer stopped) and the
// measured cost is the enqueue alone.
type parkedTransport struct{}

func (parkedTransport) Send(ctx context.Context, _ lanes.Lane, _ uint64, _ *raftpb.Message) error {
	<-ctx.Done()
	return ctx.Err()
}

type nopReporter struct{}

func (nopReporter) ReportUnreachable(uint64)                   {}
func (nopReporter) ReportSnapshot(uint64, raft.SnapshotStatus) {}

// benchMessages are the two shapes raft sends most: an append carrying one
// 128-byte entry and a heartbeat.
func benchMessages() []struct {
	name string
	m    *raftpb.Message
} {
	return []struct {
		name string
		m    *raftpb.Message
	}{
		{"MsgApp-128B", msgApp(2, 1, make([]byte, 128))},
		{"MsgHeartbeat", msg(raftpb.MessageType_MsgHeartbeat, 2)},
	}
}

func benchDispatcher(b *testing.B, mode lanes.Mode) *Dispatcher {
	d, err := NewDispatcher(DispatcherConfig{Mode: mode, Transport: parkedTransport{}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(d.Close)
	d.AddPeer(2)
	return d
}

// BenchmarkDispatchAccept measures queuing one message into a lane with room,
// the path every raft message takes. Messages are queued without copying.
func BenchmarkDispatchAccept(b *testing.B) {
	for _, mode := range []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane} {
		for _, tc := range benchMessages() {
			b.Run(mode.String()+"/"+tc.name, func(b *testing.B) {
				d := benchDispatcher(b, mode)
				lane, _ := lanes.Route(mode, tc.m.GetType())
				q := d.peers[2].lanes[lane].q
				batch := []*raftpb.Message{tc.m}
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if len(q) == cap(q) {
						b.StopTimer()
						for len(q) > 0 {
							<-q
						}
						b.StartTimer()
					}
					d.Dispatch(batch)
					d.ApplyReports(nopReporter{})
				}
			})
		}
	}
}

// BenchmarkDispatchDrop measures a message arriving at a full lane, including
// handing its report to raft.
func BenchmarkDispatchDrop(b *testing.B) {
	for _, mode := range []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane} {
		for _, tc := range benchMessages() {
			b.Run(mode.String()+"/"+tc.name, func(b *testing.B) {
				d := benchDispatcher(b, mode)
				lane, _ := lanes.Route(mode, tc.m.GetType())
				q := d.peers[2].lanes[lane].q
				batch := []*raftpb.Message{tc.m}
				for len(q) < cap(q) {
					d.Dispatch(batch)
				}
				d.ApplyReports(nopReporter{})
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					d.Dispatch(batch)
					d.ApplyReports(nopReporter{})
				}
			})
		}
	}
}

// BenchmarkDeepCopyMsgApp is the cost the accept path avoids by queueing
// raft's messages without copying them: a deep copy of the same append, for
// comparison with BenchmarkDispatchAccept in the same run.
func BenchmarkDeepCopyMsgApp(b *testing.B) {
	m := msgApp(2, 1, make([]byte, 128))
	b.ReportAllocs()
	for range b.N {
		if proto.Clone(m) == nil {
			b.Fatal("nil clone")
		}
	}
}
