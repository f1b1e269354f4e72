package demo

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/transport"
)

// The trace's bookkeeping, fed the hook calls the replicas make: a transfer
// opens at its MsgSnap's enqueue and closes at its arrival; only other
// groups' appends from the same sender, queued while it is open, count;
// stragglers arriving after the transfer count; the MsgSnap's lane decides
// the layout; a transfer that never arrives is abandoned. The live numbers
// come from TestDemoSubprocessHealthy.
func TestTransferTrace(t *testing.T) {
	const follower, leader, other = 3, 1, 2
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	snap := func(from uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(follower),
			Snapshot: &raftpb.Snapshot{Data: make([]byte, 1000)}}
	}
	app := func(from, index uint64) *raftpb.Message {
		return &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(follower), Term: proto.Uint64(2), Index: proto.Uint64(index)}
	}
	tr := newTransferTrace(follower, 0)
	arrive := func(group uint64, m *raftpb.Message, ms int) {
		tr.received(transport.TraceEvent{Received: true, Peer: m.GetFrom(), Group: group, Msg: m, Start: at(ms)})
	}

	// Legacy: the snapshot in the normal lane, appends behind it.
	tr.enqueued(1, lanes.LaneNormal, app(leader, 1), at(0)) // before the transfer: ignored
	tr.enqueued(0, lanes.LaneNormal, snap(leader), at(10))
	tr.enqueued(1, lanes.LaneNormal, app(leader, 2), at(20))
	tr.enqueued(2, lanes.LaneNormal, app(leader, 2), at(30))
	tr.enqueued(0, lanes.LaneNormal, app(leader, 9), at(40)) // the snapshot's own group: ignored
	tr.enqueued(1, lanes.LaneNormal, app(other, 3), at(40))  // another sender: ignored
	tr.enqueued(1, lanes.LaneNormal, app(leader, 4), at(45)) // never arrives: lost
	arrive(1, app(leader, 1), 5)
	arrive(0, snap(leader), 1010)
	arrive(1, app(leader, 2), 1020)
	arrive(2, app(leader, 2), 1100) // straggler, after the transfer

	// Four-lane: appends beside the snapshot.
	tr.enqueued(0, lanes.LaneSnapshot, snap(leader), at(20000))
	tr.enqueued(1, lanes.LaneReplication, app(leader, 5), at(20010))
	arrive(1, app(leader, 5), 20012)
	arrive(0, snap(leader), 21000)

	// Sent, never arrived.
	tr.enqueued(0, lanes.LaneSnapshot, snap(other), at(30000))

	legacy, four, abandoned := tr.result()
	if legacy.Transfers != 1 || legacy.Appends != 2 || legacy.Lost != 1 || legacy.SnapshotBytes != 1000 {
		t.Errorf("legacy: got %+v, want 1 transfer of 1000 B, 2 appends, 1 lost", legacy)
	}
	if got, want := *legacy.TransferP50, 1.0; got != want {
		t.Errorf("legacy transfer p50 %v s, want %v", got, want)
	}
	if got, want := *legacy.DeliveryP99, 1.07; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("legacy delivery p99 %v s, want %v (the straggler)", got, want)
	}
	if got, want := *legacy.DeliveryP50, 1.0; got != want {
		t.Errorf("legacy delivery p50 %v s, want %v", got, want)
	}
	if four.Transfers != 1 || four.Appends != 1 || four.Lost != 0 {
		t.Errorf("four-lane: got %+v, want 1 transfer, 1 append, none lost", four)
	}
	if got, want := *four.DeliveryP99, 0.002; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("four-lane delivery p99 %v s, want %v", got, want)
	}
	if legacy.Layout != "legacy" || four.Layout != "four-lane" {
		t.Errorf("layouts %q and %q", legacy.Layout, four.Layout)
	}
	if abandoned != 1 {
		t.Errorf("abandoned %d, want 1", abandoned)
	}
}

// A layout with no transfer reports no numbers rather than zeros.
func TestTransferTraceEmpty(t *testing.T) {
	legacy, four, abandoned := newTransferTrace(3, 0).result()
	for _, l := range []TransferLayout{legacy, four} {
		if l.Transfers != 0 || l.Appends != 0 || l.TransferP50 != nil || l.DeliveryP99 != nil {
			t.Errorf("%s: got %+v, want nothing measured", l.Layout, l)
		}
	}
	if abandoned != 0 {
		t.Errorf("abandoned %d, want 0", abandoned)
	}
}
