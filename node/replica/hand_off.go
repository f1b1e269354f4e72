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
func (g *group) handOff() time.Time {
	g.stopping = true
	now := time.Now()
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return now
	}
	var to, match uint64
	g.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if id != g.r.self.ID && typ == raft.ProgressTypePeer && pr.RecentActive && (to == 0 || pr.Match > match) {
			to, match = id, pr.Match
		}
	})
	if to == 0 {
		g.log.Info("stopping as leader with no active follower to hand leadership to")
		return now
	}
	g.log.Info("stopping: handing leadership over", "to", g.r.peerName(to), "match", match)
	g.rn.TransferLeader(to)
	g.handOffTo = to
	return now.Add(time.Duration(g.r.cfg.ElectionTick) * g.r.cfg.TickInterval)
}

// handedOff reports whether a stopping replica may exit: it is no leader,
// or its hand-off ended (the new leader is known) or ran out of time.
func (g *group) handedOff(until time.Time) bool {
	if g.handOffTo == 0 {
		return true
	}
	bs := g.rn.BasicStatus()
	if bs.Lead != raft.None && bs.Lead != g.r.self.ID {
		g.log.Info("leadership handed over", "leader", g.r.peerName(bs.Lead))
		return true
	}
	if time.Now().After(until) {
		g.log.Warn("leadership hand-off timed out; stopping anyway", "to", g.r.peerName(g.handOffTo))
		return true
	}
	return false
}
