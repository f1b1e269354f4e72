// Package lanes is the routing table of the raft outbound dispatcher: which
// lane each raft message type travels in, how deep each lane's buffer is, and
// how the two environment switches that select the layout and the FSM sync
// mode are read.
//
// Two layouts exist. The legacy two-lane layout puts priority traffic
// (heartbeats, votes, read-index, timeout-now) in the heartbeat lane and
// everything else in one normal lane, so a multi-MiB MsgSnap stalls every
// MsgApp queued behind it. The four-lane layout gives replication, snapshots
// and the remaining traffic lanes of their own. The layout is chosen by
// ELASTICKV_RAFT_DISPATCHER_LANES.
//
// The package is pure: it starts no goroutines, keeps no state, registers no
// metrics and never reads the environment itself. Callers read the
// environment once, at their edge, and pass the value to ParseLanesFlag and
// ParseSyncMode.
package lanes
