// Package status is the document a lanectl replica serves on GET /status,
// and the health rule /healthz applies to it. It is the one definition that
// the replica writing the document and the programs reading it (the rollout's
// health probes, the load generator, tests) share.
//
// A replica runs one or more raft groups. The document describes every one
// in Groups, and repeats group 0's fields at the top level, so a reader
// written for a single-group replica (role, leader, applied...) keeps
// working and a single-group document reads as it always did.
//
// It holds plain data and pure functions only: it never imports raft, bbolt
// or net/http, so a reader of /status pulls in nothing else.
package status

import (
	"fmt"
	"strings"
	"time"
)

// LeaderCommitMaxAge is how old a follower's knowledge of the leader's
// commit index may be for Health to trust it.
const LeaderCommitMaxAge = 3 * time.Second

// Replica is what GET /status returns.
type Replica struct {
	ID     string `json:"id"`
	RaftID uint64 `json:"raft_id"`
	// Group is group 0, inline: its fields appear at the top level.
	Group
	LanesEnabled bool   `json:"lanes_enabled"`
	SyncMode     string `json:"sync_mode"`
	// Groups is every raft group the replica runs, by group id (0, 1, ...).
	Groups []Group `json:"groups"`
}

// Group is one raft group's state on one replica.
type Group struct {
	// ID is the group's id: 0 to the replica's group count minus one.
	ID           uint64 `json:"group"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	LeaderRaftID uint64 `json:"leader_raft_id"`
	// Role is leader, follower, candidate or pre-candidate.
	Role string `json:"role"`
	// LastIndex is the newest entry in this replica's log of the group;
	// above Commit while entries wait for a quorum.
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
	// SnapshotsInstalled counts snapshots received from a leader since the
	// replica started.
	SnapshotsInstalled uint64 `json:"snapshots_installed"`
}

// Health says whether the group is serving on this replica: a leader is
// known and the applied index is within maxLag of the leader's commit index,
// learned no longer than LeaderCommitMaxAge before now. reason says why
// not, or summarises when it is healthy.
func (g Group) Health(maxLag uint64, now time.Time) (ok bool, reason string) {
	switch {
	case g.LeaderRaftID == 0:
		return false, fmt.Sprintf("no leader known (role %s, term %d)", g.Role, g.Term)
	case g.LeaderCommitAt.IsZero():
		return false, fmt.Sprintf("leader is %s but its commit index is not known yet (applied %d)", g.Leader, g.Applied)
	case now.Sub(g.LeaderCommitAt) > LeaderCommitMaxAge:
		return false, fmt.Sprintf("leader %s has not confirmed its commit index for %v (applied %d)", g.Leader, now.Sub(g.LeaderCommitAt).Round(time.Millisecond), g.Applied)
	case g.Applied+maxLag < g.LeaderCommit:
		return false, fmt.Sprintf("applied index %d is %d behind the leader's commit index %d (max lag %d)", g.Applied, g.LeaderCommit-g.Applied, g.LeaderCommit, maxLag)
	}
	return true, fmt.Sprintf("ok: %s, leader %s, applied %d, leader commit %d", g.Role, g.Leader, g.Applied, g.LeaderCommit)
}

// Health says whether every group is serving on this replica (see
// Group.Health). With one group the reason is that group's; with several
// it names each group that is not serving, or summarises them all.
func (s Replica) Health(maxLag uint64, now time.Time) (ok bool, reason string) {
	groups := s.Groups
	if len(groups) == 0 {
		groups = []Group{s.Group}
	}
	if len(groups) == 1 {
		return groups[0].Health(maxLag, now)
	}
	var bad []string
	leading := 0
	for _, g := range groups {
		if ok, why := g.Health(maxLag, now); !ok {
			bad = append(bad, fmt.Sprintf("group %d: %s", g.ID, why))
		}
		if g.Role == "leader" {
			leading++
		}
	}
	if len(bad) > 0 {
		return false, fmt.Sprintf("%d of %d groups not serving: %s", len(bad), len(groups), strings.Join(bad, "; "))
	}
	return true, fmt.Sprintf("ok: %d groups serving, leader of %d", len(groups), leading)
}
