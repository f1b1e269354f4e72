package replica

import (
	"time"

	"go.etcd.io/raft/v3"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/replica/status"
)

// Status returns the replica's state, each group's as of its raft loop's
// last iteration.
func (r *Replica) Status() status.Replica {
	st := status.Replica{
		ID:           r.cfg.Name,
		RaftID:       r.self.ID,
		LanesEnabled: r.cfg.Mode == lanes.ModeFourLane,
		SyncMode:     r.cfg.SyncMode.String(),
		Groups:       make([]status.Group, len(r.groups)),
	}
	for i, g := range r.groups {
		st.Groups[i] = *g.status.Load()
	}
	st.Group = st.Groups[0]
	return st
}

// publish refreshes the group's status and gauges.
func (g *group) publish() {
	bs := g.rn.BasicStatus()
	last, err := g.ms.LastIndex()
	if err != nil {
		g.log.Warn("read last log index", "err", err)
	}
	st := &status.Group{
		ID:            g.id,
		Term:          bs.GetTerm(),
		LeaderRaftID:  bs.Lead,
		Role:          roleName(bs.RaftState),
		LastIndex:     last,
		Commit:        bs.GetCommit(),
		Applied:       g.applied,
		SnapshotIndex: g.snapIndex,

		SnapshotsInstalled: g.installed,
	}
	if bs.Lead != raft.None {
		st.Leader = g.r.peerName(bs.Lead)
	}
	switch {
	case bs.RaftState == raft.StateLeader:
		st.LeaderCommit, st.LeaderCommitAt = st.Commit, time.Now()
	case !g.leaderCommitAt.IsZero():
		st.LeaderCommit, st.LeaderCommitAt = g.leaderCommit, g.leaderCommitAt
	}
	g.status.Store(st)
	g.metrics.term.Set(float64(st.Term))
	g.metrics.commit.Set(float64(st.Commit))
	g.metrics.applied.Set(float64(st.Applied))
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

func (g *group) lastContactSeconds() float64 {
	if g.isLeader.Load() {
		return 0
	}
	last := g.lastContact.Load()
	if last == 0 {
		return time.Since(g.r.started).Seconds()
	}
	return time.Since(time.Unix(0, last)).Seconds()
}
