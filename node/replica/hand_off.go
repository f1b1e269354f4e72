package replica

import (
	"context"
	"fmt"
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

// moveRequest asks a group's raft loop to hand its leadership to a peer.
type moveRequest struct {
	to     uint64
	result chan error
}

// TransferLeadership asks raft group group, which this replica must lead,
// to hand its leadership to peer (a name from the peer list, or a raft ID),
// with raft's leadership transfer. It returns once the transfer has
// started; the peer leads once every replica's status says so. Benchmarks
// use it to put the leaders of all groups on one replica.
func (r *Replica) TransferLeadership(ctx context.Context, group uint64, peer string) error {
	if group >= uint64(len(r.groups)) {
		return fmt.Errorf("transfer leadership: %w: group %d does not exist (the replica runs %d)", ErrBadGroup, group, len(r.groups))
	}
	g := r.groups[group]
	id, err := r.resolvePeer(peer)
	if err != nil {
		return fmt.Errorf("transfer leadership: %w", err)
	}
	req := moveRequest{to: id, result: make(chan error, 1)}
	select {
	case g.movec <- req:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-g.stopped:
		return ErrStopped
	}
	return <-req.result
}

// startMove runs on the raft goroutine.
func (g *group) startMove(to uint64) error {
	switch {
	case !g.isLeader.Load():
		return fmt.Errorf("transfer leadership of group %d: %w", g.id, ErrNotLeader)
	case g.stopping:
		return ErrStopped
	case to == g.r.self.ID:
		return nil
	}
	g.log.Info("handing leadership over on request", "to", g.r.peerName(to))
	g.rn.TransferLeader(to)
	return nil
}
