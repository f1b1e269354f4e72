package replica

import (
	"time"

	"go.etcd.io/raft/v3"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/replica/status"
)

// Status returns the replica's state as of the last raft loop iteration.
func (r *Replica) Status() status.Replica { return *r.status.Load() }

// publish refreshes the Status snapshot and the gauges.
func (r *Replica) publish() {
	bs := r.rn.BasicStatus()
	last, err := r.ms.LastIndex()
	if err != nil {
		r.log.Warn("read last log index", "err", err)
	}
	st := &status.Replica{
		ID:            r.cfg.Name,
		RaftID:        r.self.ID,
		Term:          bs.GetTerm(),
		LeaderRaftID:  bs.Lead,
		Role:          roleName(bs.RaftState),
		LastIndex:     last,
		Commit:        bs.GetCommit(),
		Applied:       r.applied,
		SnapshotIndex: r.snapIndex,
		LanesEnabled:  r.cfg.Mode == lanes.ModeFourLane,
		SyncMode:      r.cfg.SyncMode.String(),

		SnapshotsInstalled: r.installed,
	}
	if bs.Lead != raft.None {
		st.Leader = r.peerName(bs.Lead)
	}
	switch {
	case bs.RaftState == raft.StateLeader:
		st.LeaderCommit, st.LeaderCommitAt = st.Commit, time.Now()
	case !r.leaderCommitAt.IsZero():
		st.LeaderCommit, st.LeaderCommitAt = r.leaderCommit, r.leaderCommitAt
	}
	r.status.Store(st)
	r.metrics.term.Set(float64(st.Term))
	r.metrics.commit.Set(float64(st.Commit))
	r.metrics.applied.Set(float64(st.Applied))
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

func (r *Replica) lastContactSeconds() float64 {
	if r.isLeader.Load() {
		return 0
	}
	last := r.lastContact.Load()
	if last == 0 {
		return time.Since(r.started).Seconds()
	}
	return time.Since(time.Unix(0, last)).Seconds()
}
