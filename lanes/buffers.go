package lanes

// Lane buffer sizes, in messages. A lane that is full drops the next message
// instead of blocking the raft goroutine.
const (
	// HeartbeatBuffer is deep because heartbeats and votes are small and a
	// drop in this lane can cost an election.
	HeartbeatBuffer = 512
	// SnapshotBuffer is shallow: a snapshot is large, raft sends one at a time
	// per follower, and a backlog of them is useless.
	SnapshotBuffer = 4
	// OtherBuffer holds the rare remaining traffic (proposals forwarded to the
	// leader, leader transfer, forget-leader).
	OtherBuffer = 16
	// DefaultMaxInflightMsgs is raft's Config.MaxInflightMsgs used by the
	// replica when none is configured. The replication lane (and the legacy
	// normal lane) is sized to it, since raft never has more appends in flight
	// to one follower than that.
	DefaultMaxInflightMsgs = 1024
)

// BufferSize returns the capacity of lane l when raft runs with the given
// MaxInflightMsgs (DefaultMaxInflightMsgs when maxInflight <= 0).
func BufferSize(l Lane, maxInflight int) int {
	if maxInflight <= 0 {
		maxInflight = DefaultMaxInflightMsgs
	}
	switch l {
	case LaneHeartbeat:
		return HeartbeatBuffer
	case LaneSnapshot:
		return SnapshotBuffer
	case LaneOther:
		return OtherBuffer
	default:
		return maxInflight
	}
}
