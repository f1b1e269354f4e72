package lanes

import (
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// TestRoutingTable pins the lane of every message type raft defines, in both
// layouts. It is the test that fails when upstream adds a type.
func TestRoutingTable(t *testing.T) {
	const local = "local"
	want := map[string][2]string{ // type: {legacy, four-lane}
		"MsgHup":               {local, local},
		"MsgBeat":              {local, local},
		"MsgProp":              {"normal", "other"},
		"MsgApp":               {"normal", "replication"},
		"MsgAppResp":           {"normal", "replication"},
		"MsgVote":              {"heartbeat", "heartbeat"},
		"MsgVoteResp":          {"heartbeat", "heartbeat"},
		"MsgSnap":              {"normal", "snapshot"},
		"MsgHeartbeat":         {"heartbeat", "heartbeat"},
		"MsgHeartbeatResp":     {"heartbeat", "heartbeat"},
		"MsgUnreachable":       {local, local},
		"MsgSnapStatus":        {local, local},
		"MsgCheckQuorum":       {local, local},
		"MsgTransferLeader":    {"normal", "other"},
		"MsgTimeoutNow":        {"heartbeat", "heartbeat"},
		"MsgReadIndex":         {"heartbeat", "heartbeat"},
		"MsgReadIndexResp":     {"heartbeat", "heartbeat"},
		"MsgPreVote":           {"heartbeat", "heartbeat"},
		"MsgPreVoteResp":       {"heartbeat", "heartbeat"},
		"MsgStorageAppend":     {local, local},
		"MsgStorageAppendResp": {local, local},
		"MsgStorageApply":      {local, local},
		"MsgStorageApplyResp":  {local, local},
		"MsgForgetLeader":      {"normal", "other"},
	}
	if got := len(raftpb.MessageType_name); got != len(want) {
		t.Errorf("raft defines %d message types, the table pins %d: route every new type explicitly", got, len(want))
	}
	for num, name := range raftpb.MessageType_name {
		typ := raftpb.MessageType(num)
		w, ok := want[name]
		if !ok {
			t.Errorf("%s (%d): no pinned route; add it to the routing table and this test", name, num)
			continue
		}
		if Classify(typ) == KindUnknown {
			t.Errorf("%s: missing from the routing table", name)
		}
		if isLocal := Classify(typ) == KindLocal; isLocal != raft.IsLocalMsg(typ) {
			t.Errorf("%s: local = %v, raft.IsLocalMsg = %v", name, isLocal, raft.IsLocalMsg(typ))
		}
		for i, mode := range []Mode{ModeLegacy, ModeFourLane} {
			lane, ok := Route(mode, typ)
			got := local
			if ok {
				got = lane.String()
				if !mode.Has(lane) {
					t.Errorf("%s in %s mode: routed to %s, which that layout does not have", name, mode, lane)
				}
			}
			if got != w[i] {
				t.Errorf("%s in %s mode: got %s, want %s", name, mode, got, w[i])
			}
		}
	}
}

func TestRouteUnknownType(t *testing.T) {
	for _, typ := range []raftpb.MessageType{-1, raftpb.MessageType(len(raftpb.MessageType_name)), 1000} {
		if lane, ok := Route(ModeFourLane, typ); ok {
			t.Errorf("type %d: routed to %s, want not dispatched", typ, lane)
		}
		if k := Classify(typ); k != KindUnknown {
			t.Errorf("type %d: kind %d, want KindUnknown", typ, k)
		}
	}
}

func TestBufferSizes(t *testing.T) {
	tests := []struct {
		lane        Lane
		maxInflight int
		want        int
	}{
		{LaneHeartbeat, 0, 512},
		{LaneReplication, 0, 1024},
		{LaneReplication, 256, 256},
		{LaneSnapshot, 0, 4},
		{LaneOther, 0, 16},
		{LaneNormal, 0, 1024},
		{LaneNormal, 64, 64},
	}
	for _, tt := range tests {
		if got := BufferSize(tt.lane, tt.maxInflight); got != tt.want {
			t.Errorf("BufferSize(%s, %d) = %d, want %d", tt.lane, tt.maxInflight, got, tt.want)
		}
	}
}

func TestModeLanes(t *testing.T) {
	if got := ModeLegacy.Lanes(); len(got) != 2 || got[0] != LaneHeartbeat || got[1] != LaneNormal {
		t.Errorf("legacy lanes = %v", got)
	}
	if got := ModeFourLane.Lanes(); len(got) != 4 {
		t.Errorf("four-lane lanes = %v", got)
	}
	for i := 0; i < NumLanes; i++ {
		l := Lane(i)
		back, err := ParseLane(l.String())
		if err != nil || back != l {
			t.Errorf("ParseLane(%q) = %v, %v", l.String(), back, err)
		}
	}
	if _, err := ParseLane("bogus"); err == nil {
		t.Error("ParseLane(bogus): want error")
	}
}

func TestParseLanesFlag(t *testing.T) {
	tests := []struct {
		in          string
		want        bool
		wantWarning bool
	}{
		{"", false, false},
		{"   ", false, false},
		{"1", true, false},
		{" 1 ", true, false},
		{"true", true, false},
		{"TRUE", true, false},
		{"t", true, false},
		{"0", false, false},
		{"false", false, false},
		{"yes", false, true},
		{"on", false, true},
		{"2", false, true},
	}
	for _, tt := range tests {
		got, warning := ParseLanesFlag(tt.in)
		if got != tt.want || (warning != "") != tt.wantWarning {
			t.Errorf("ParseLanesFlag(%q) = %v, warning %q; want %v, warning %v", tt.in, got, warning, tt.want, tt.wantWarning)
		}
	}
}

func TestParseSyncMode(t *testing.T) {
	tests := []struct {
		in          string
		want        SyncMode
		wantWarning bool
	}{
		{"", SyncModeSync, false},
		{"sync", SyncModeSync, false},
		{" SYNC ", SyncModeSync, false},
		{"nosync", SyncModeNoSync, false},
		{"NoSync", SyncModeNoSync, false},
		{"async", SyncModeSync, true},
		{"no-sync", SyncModeSync, true},
	}
	for _, tt := range tests {
		got, warning := ParseSyncMode(tt.in)
		if got != tt.want || (warning != "") != tt.wantWarning {
			t.Errorf("ParseSyncMode(%q) = %v, warning %q; want %v, warning %v", tt.in, got, warning, tt.want, tt.wantWarning)
		}
	}
}
