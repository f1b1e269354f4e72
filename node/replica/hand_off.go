package replica

import (
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"
)

// handOff starts the leadership transfer a stopping leader makes, and
// returns until when to wait for it. The most caught-up follower is asked
// to campaign at once (raft's MsgTimeoutNow). Meanwhile raft drops new
// proposals, and proposeQueued answers them ErrStopped.
func (r *Replica) handOff() time.Time {
	r.stopping = true
	now := time.Now()
	if r.rn.BasicStatus().RaftState != raft.StateLeader {
		return now
	}
	var to, match uint64
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if id != r.self.ID && typ == raft.ProgressTypePeer && pr.RecentActive && (to == 0 || pr.Match > match) {
			to, match = id, pr.Match
		}
	})
	if to == 0 {
		r.log.Info("stopping as leader with no active follower to hand leadership to")
		return now
	}
	r.log.Info("stopping: handing leadership over", "to", r.peerName(to), "match", match)
	r.rn.TransferLeader(to)
	r.handOffTo = to
	return now.Add(time.Duration(r.cfg.ElectionTick) * r.cfg.TickInterval)
}

// handedOff reports whether a stopping replica may exit: it is no leader,
// or its hand-off ended (the new leader is known) or ran out of time.
func (r *Replica) handedOff(until time.Time) bool {
	if r.handOffTo == 0 {
		return true
	}
	bs := r.rn.BasicStatus()
	if bs.Lead != raft.None && bs.Lead != r.self.ID {
		r.log.Info("leadership handed over", "leader", r.peerName(bs.Lead))
		return true
	}
	if time.Now().After(until) {
		r.log.Warn("leadership hand-off timed out; stopping anyway", "to", r.peerName(r.handOffTo))
		return true
	}
	return false
}
