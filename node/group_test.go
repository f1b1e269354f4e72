package node

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
)

func (t *recordingTransport) deliveredIn(group uint64, typ raftpb.MessageType) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, d := range t.got {
		if d.group == group && d.m.GetType() == typ {
			n++
		}
	}
	return n
}

// TestGroupsShareAPeersLanes is the multi-raft form of the head-of-line
// problem: group 1's MsgSnap stuck in the transport holds back group 2's
// appends to the same peer in the legacy layout, because both groups share
// the peer's normal lane, and not in the four-lane layout.
func TestGroupsShareAPeersLanes(t *testing.T) {
	for _, tt := range []struct {
		mode    lanes.Mode
		blocked bool
	}{{lanes.ModeLegacy, true}, {lanes.ModeFourLane, false}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			tr := newRecordingTransport()
			release := sync.OnceFunc(tr.holdType(raftpb.MessageType_MsgSnap))
			defer release()
			d, _ := newTestDispatcher(t, tt.mode, tr)
			d.AddPeer(2)
			g1, g2 := d.Group(1), d.Group(2)
			g1.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgSnap, 2)})
			if got := <-tr.entered; got != raftpb.MessageType_MsgSnap {
				t.Fatalf("first send was %s, want the snapshot", got)
			}
			g2.Dispatch([]*raftpb.Message{msgApp(2, 10, nil), msg(raftpb.MessageType_MsgHeartbeat, 2)})
			poll(t, "group 2's heartbeat", func() bool { return tr.deliveredIn(2, raftpb.MessageType_MsgHeartbeat) == 1 })
			if tt.blocked {
				if n := tr.deliveredIn(2, raftpb.MessageType_MsgApp); n != 0 {
					t.Errorf("legacy: group 2's append went out while group 1's snapshot held the normal lane (%d delivered)", n)
				}
				release()
				poll(t, "group 2's append after the snapshot", func() bool { return tr.deliveredIn(2, raftpb.MessageType_MsgApp) == 1 })
			} else {
				poll(t, "group 2's append during the snapshot", func() bool { return tr.deliveredIn(2, raftpb.MessageType_MsgApp) == 1 })
			}
			if n := tr.deliveredIn(0, raftpb.MessageType_MsgApp) + tr.deliveredIn(1, raftpb.MessageType_MsgApp); n != 0 {
				t.Errorf("%d of group 2's appends reached the transport under another group", n)
			}
		})
	}
}

// TestGroupReportsStayWithTheirGroup: what the dispatcher learns about a
// message goes to the raft group that sent it, never to another.
func TestGroupReportsStayWithTheirGroup(t *testing.T) {
	tr := newRecordingTransport()
	tr.fail = func(m *raftpb.Message) error {
		if m.GetType() == raftpb.MessageType_MsgSnap {
			return errors.New("connection reset")
		}
		return nil
	}
	d, _ := newTestDispatcher(t, lanes.ModeFourLane, tr)
	d.AddPeer(2)
	g1, g2, g3 := d.Group(1), d.Group(2), d.Group(3)
	g1.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgSnap, 2)})
	g2.Dispatch([]*raftpb.Message{msgApp(2, 1, nil)})
	g3.Dispatch([]*raftpb.Message{msg(raftpb.MessageType_MsgHeartbeat, 9)}) // unknown peer
	<-g1.Pending()
	poll(t, "group 2's append", func() bool { return tr.deliveredIn(2, raftpb.MessageType_MsgApp) == 1 })

	got := map[uint64]string{}
	for _, g := range []*Group{g1, g2, g3, d.Group(0)} {
		rep := &recordingReporter{}
		g.ApplyReports(rep)
		got[g.ID()] = fmt.Sprint(rep.unreachable, rep.snapshots)
	}
	want := map[uint64]string{1: "[2] [2:failure]", 2: "[] []", 3: "[9] []", 0: "[] []"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reports by group = %v, want %v", got, want)
	}
	if d.Group(1) != g1 {
		t.Error("Group(1) returned a new handle for a known group")
	}
}

// TestGroupsDispatchConcurrently: groups driven by their own goroutines
// enqueue into the same lanes at once; every message is either sent or
// dropped, and every drop is reported to the group that made it.
func TestGroupsDispatchConcurrently(t *testing.T) {
	tr := newRecordingTransport()
	d, reg := newTestDispatcher(t, lanes.ModeFourLane, tr)
	d.AddPeer(2)
	const groups, perGroup = 8, 2000
	unreachable := make([]int, groups)
	var wg sync.WaitGroup
	for i := range groups {
		g := d.Group(uint64(i + 1))
		wg.Go(func() {
			for j := range perGroup {
				g.Dispatch([]*raftpb.Message{msgApp(2, uint64(j), nil)})
				rep := &recordingReporter{}
				g.ApplyReports(rep)
				unreachable[i] += len(rep.unreachable)
			}
		})
	}
	wg.Wait()
	lane := lanes.LaneReplication.String()
	poll(t, "every message sent or dropped", func() bool {
		return counter(MetricDispatchSent, reg, lane, "2")+counter(MetricDispatchDropped, reg, lane, "2") == groups*perGroup
	})
	reported := 0
	for _, n := range unreachable {
		reported += n
	}
	if dropped := counter(MetricDispatchDropped, reg, lane, "2"); float64(reported) != dropped {
		t.Errorf("groups were told of %d drops, the counter says %v", reported, dropped)
	}
	for i := range groups {
		sent := tr.deliveredIn(uint64(i+1), raftpb.MessageType_MsgApp)
		if sent+unreachable[i] != perGroup {
			t.Errorf("group %d: %d sent + %d dropped, want %d", i+1, sent, unreachable[i], perGroup)
		}
	}
}
