// Package status is the document a lanectl replica serves on GET /status,
// and the health rule /healthz applies to it. It is the one definition that
// the replica writing the document and the programs reading it (the rollout's
// health probes, the load generator, tests) share.
//
// It holds plain data and pure functions only: it never imports raft, bbolt
// or net/http, so a reader of /status pulls in nothing else.
package status

import (
	"fmt"
	"time"
)

// LeaderCommitMaxAge is how old a follower's knowledge of the leader's
// commit index may be for Health to trust it.
const LeaderCommitMaxAge = 3 * time.Second

// Replica is what GET /status returns.
type Replica struct {
	ID           string `json:"id"`
	RaftID       uint64 `json:"raft_id"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	LeaderRaftID uint64 `json:"leader_raft_id"`
	// Role is leader, follower, candidate or pre-candidate.
	Role string `json:"role"`
	// LastIndex is the newest entry in this replica's log; above Commit
	// while entries wait for a quorum.
	LastIndex     uint64 `json:"last_index"`
	Commit        uint64 `json:"commit"`
	Applied       uint64 `json:"applied"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	// LeaderCommit is the leader's commit index as last learned (a
	// follower asks for it with raft ReadIndex); 0 when unknown.
	LeaderCommit uint64 `json:"leader_commit"`
	// LeaderCommitAt is when LeaderCommit was learned; zero (and absent
	// from the document) when it is unknown.
	LeaderCommitAt time.Time `json:"leader_commit_at,omitzero"`
	LanesEnabled   bool      `json:"lanes_enabled"`
	SyncMode       string    `json:"sync_mode"`
	// SnapshotsInstalled counts snapshots received from a leader since the
	// replica started.
	SnapshotsInstalled uint64 `json:"snapshots_installed"`
}

// Health says whether the replica is serving: a leader is known and the
// applied index is within maxLag of the leader's commit index, learned no
// longer than LeaderCommitMaxAge before now. reason says why not, or
// summarises when it is healthy.
func (s Replica) Health(maxLag uint64, now time.Time) (ok bool, reason string) {
	switch {
	case s.LeaderRaftID == 0:
		return false, fmt.Sprintf("no leader known (role %s, term %d)", s.Role, s.Term)
	case s.LeaderCommitAt.IsZero():
		return false, fmt.Sprintf("leader is %s but its commit index is not known yet (applied %d)", s.Leader, s.Applied)
	case now.Sub(s.LeaderCommitAt) > LeaderCommitMaxAge:
		return false, fmt.Sprintf("leader %s has not confirmed its commit index for %v (applied %d)", s.Leader, now.Sub(s.LeaderCommitAt).Round(time.Millisecond), s.Applied)
	case s.Applied+maxLag < s.LeaderCommit:
		return false, fmt.Sprintf("applied index %d is %d behind the leader's commit index %d (max lag %d)", s.Applied, s.LeaderCommit-s.Applied, s.LeaderCommit, maxLag)
	}
	return true, fmt.Sprintf("ok: %s, leader %s, applied %d, leader commit %d", s.Role, s.Leader, s.Applied, s.LeaderCommit)
}
