package lanes

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
)

// Lane is one outbound queue of a peer, with its own worker and, in the
// replica's transport, its own connection.
type Lane uint8

// The lanes. LaneNormal exists only in the legacy layout; LaneReplication,
// LaneSnapshot and LaneOther only in the four-lane layout.
const (
	LaneHeartbeat Lane = iota
	LaneReplication
	LaneSnapshot
	LaneOther
	LaneNormal
)

// NumLanes is the number of distinct Lane values, for arrays indexed by Lane.
const NumLanes = int(LaneNormal) + 1

var laneNames = [NumLanes]string{
	LaneHeartbeat:   "heartbeat",
	LaneReplication: "replication",
	LaneSnapshot:    "snapshot",
	LaneOther:       "other",
	LaneNormal:      "normal",
}

// String returns the lane's name as it appears in the `lane` metric label.
func (l Lane) String() string {
	if int(l) < NumLanes {
		return laneNames[l]
	}
	return fmt.Sprintf("lane(%d)", uint8(l))
}

// ParseLane is the inverse of Lane.String.
func ParseLane(s string) (Lane, error) {
	for i, name := range laneNames {
		if name == s {
			return Lane(i), nil
		}
	}
	return 0, fmt.Errorf("unknown lane %q (want heartbeat, replication, snapshot, other or normal)", s)
}

// Mode is a dispatcher layout.
type Mode uint8

// The layouts.
const (
	ModeLegacy Mode = iota
	ModeFourLane
)

// String returns "legacy" or "four-lane".
func (m Mode) String() string {
	switch m {
	case ModeLegacy:
		return "legacy"
	case ModeFourLane:
		return "four-lane"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ModeFor returns ModeFourLane when enabled is true, else ModeLegacy.
func ModeFor(enabled bool) Mode {
	if enabled {
		return ModeFourLane
	}
	return ModeLegacy
}

var (
	legacyLanes   = []Lane{LaneHeartbeat, LaneNormal}
	fourLaneLanes = []Lane{LaneHeartbeat, LaneReplication, LaneSnapshot, LaneOther}
)

// Lanes returns the lanes of the layout in a fixed order. The slice is shared;
// callers must not modify it.
func (m Mode) Lanes() []Lane {
	if m == ModeFourLane {
		return fourLaneLanes
	}
	return legacyLanes
}

// Has reports whether the lane exists in the layout.
func (m Mode) Has(l Lane) bool {
	for _, x := range m.Lanes() {
		if x == l {
			return true
		}
	}
	return false
}

// route is one row of the table. The zero row (known false) marks a type the
// table does not know.
type route struct {
	known    bool
	local    bool
	legacy   Lane
	fourLane Lane
}

func local() route                    { return route{known: true, local: true} }
func via(legacy, fourLane Lane) route { return route{known: true, legacy: legacy, fourLane: fourLane} }

// routes is the table itself, indexed by message type: one explicit row per
// type, so a type added upstream has no row and Route reports it as unknown
// instead of silently sending it somewhere.
var routes = [...]route{
	raftpb.MessageType_MsgHup:               local(),
	raftpb.MessageType_MsgBeat:              local(),
	raftpb.MessageType_MsgProp:              via(LaneNormal, LaneOther),
	raftpb.MessageType_MsgApp:               via(LaneNormal, LaneReplication),
	raftpb.MessageType_MsgAppResp:           via(LaneNormal, LaneReplication),
	raftpb.MessageType_MsgVote:              via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgVoteResp:          via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgSnap:              via(LaneNormal, LaneSnapshot),
	raftpb.MessageType_MsgHeartbeat:         via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgHeartbeatResp:     via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgUnreachable:       local(),
	raftpb.MessageType_MsgSnapStatus:        local(),
	raftpb.MessageType_MsgCheckQuorum:       local(),
	raftpb.MessageType_MsgTransferLeader:    via(LaneNormal, LaneOther),
	raftpb.MessageType_MsgTimeoutNow:        via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgReadIndex:         via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgReadIndexResp:     via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgPreVote:           via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgPreVoteResp:       via(LaneHeartbeat, LaneHeartbeat),
	raftpb.MessageType_MsgStorageAppend:     local(),
	raftpb.MessageType_MsgStorageAppendResp: local(),
	raftpb.MessageType_MsgStorageApply:      local(),
	raftpb.MessageType_MsgStorageApplyResp:  local(),
	raftpb.MessageType_MsgForgetLeader:      via(LaneNormal, LaneOther),
}

func lookup(t raftpb.MessageType) route {
	if t < 0 || int(t) >= len(routes) {
		return route{}
	}
	return routes[t]
}

// Route reports the lane a message of type t travels in under mode m. ok is
// false for message types that are never dispatched to a peer: raft's
// local-only types, and types this table does not know (a type added upstream
// after this table was written).
func Route(m Mode, t raftpb.MessageType) (lane Lane, ok bool) {
	r := lookup(t)
	if !r.known || r.local {
		return 0, false
	}
	if m == ModeFourLane {
		return r.fourLane, true
	}
	return r.legacy, true
}

// Kind says how the routing table treats a message type.
type Kind uint8

// The kinds of message type.
const (
	// KindUnknown is a type missing from the table.
	KindUnknown Kind = iota
	// KindLocal is a type raft only uses inside one node; it is never dispatched.
	KindLocal
	// KindDispatched is a type sent to a peer through a lane.
	KindDispatched
)

// Classify reports whether t is dispatched, local-only or unknown to the table.
func Classify(t raftpb.MessageType) Kind {
	r := lookup(t)
	switch {
	case !r.known:
		return KindUnknown
	case r.local:
		return KindLocal
	default:
		return KindDispatched
	}
}
