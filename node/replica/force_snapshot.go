package replica

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// forceTimeout bounds a forced snapshot from request to MsgSnap dispatch.
const forceTimeout = 30 * time.Second

var (
	// ErrNotLeader is returned by ForceSnapshot on a replica that is not the
	// leader (or that lost leadership while preparing the snapshot).
	ErrNotLeader = errors.New("not the raft leader")
	// ErrForceBusy is returned by ForceSnapshot while another forced
	// snapshot is in progress, or while the peer is already receiving one.
	ErrForceBusy = errors.New("a snapshot transfer is already in progress")
	// ErrBadPeer is returned by ForceSnapshot for a peer that is unknown, is
	// the leader itself, or cannot be left behind without losing quorum.
	ErrBadPeer = errors.New("cannot force a snapshot to this peer")
	// ErrBadGroup is returned by ForceSnapshot for a raft group the
	// replica does not run.
	ErrBadGroup = errors.New("no such raft group")
	// errForceTimeout is returned when raft did not send the snapshot in time.
	errForceTimeout = errors.New("forced snapshot timed out")
)

// ForceSnapshotResult describes the MsgSnap a forced transfer made raft send.
type ForceSnapshotResult struct {
	Group         uint64 `json:"group"`
	Peer          string `json:"peer"`
	SnapshotIndex uint64 `json:"snapshot_index"`
	SnapshotBytes int    `json:"snapshot_bytes"`
}

type forceRequest struct {
	peer   uint64
	result chan forceOutcome
}

type forceOutcome struct {
	res ForceSnapshotResult
	err error
}

type forcePhase uint8

const (
	// forceApplying: the no-op is proposed; appends to the peer are withheld.
	forceApplying forcePhase = iota
	// forceCompact: the no-op is applied; snapshot and compact after Advance.
	forceCompact
	// forceSnapshotting: the snapshot is being written off the raft
	// goroutine; compaction follows when it is durable.
	forceSnapshotting
	// forceSending: the log is compacted past the peer; waiting for raft to
	// emit the MsgSnap.
	forceSending
)

type forceState struct {
	peer      uint64
	requestID uint64
	phase     forcePhase
	deadline  time.Time
	result    chan forceOutcome
}

// ForceSnapshot makes raft group group send a full snapshot to peer (a name
// from the peer list, or a raft ID). Only the leader can do it. It returns once the MsgSnap
// is handed to the dispatcher, which puts it in the snapshot lane (the
// normal lane in the legacy layout), the lane every group shares.
//
// Raft sends MsgSnap only to a follower that needs entries the leader has
// compacted away, so the leader makes that true: it withholds appends to the
// peer, commits a no-op with the other replicas, snapshots and compacts the
// log through that no-op, then reports the peer unreachable so raft probes it
// again and finds the entries gone. The cluster needs a quorum without the
// peer, so three replicas or more.
func (r *Replica) ForceSnapshot(ctx context.Context, group uint64, peer string) (ForceSnapshotResult, error) {
	if group >= uint64(len(r.groups)) {
		return ForceSnapshotResult{}, fmt.Errorf("%w: group %d does not exist (the replica runs %d)", ErrBadGroup, group, len(r.groups))
	}
	g := r.groups[group]
	id, err := r.resolvePeer(peer)
	if err != nil {
		return ForceSnapshotResult{}, err
	}
	req := forceRequest{peer: id, result: make(chan forceOutcome, 1)}
	select {
	case g.forcec <- req:
	case <-ctx.Done():
		return ForceSnapshotResult{}, context.Cause(ctx)
	case <-g.stopped:
		return ForceSnapshotResult{}, ErrStopped
	}
	select {
	case out := <-req.result:
		return out.res, out.err
	case <-ctx.Done():
		return ForceSnapshotResult{}, context.Cause(ctx)
	case <-g.stopped:
		return ForceSnapshotResult{}, ErrStopped
	}
}

func (r *Replica) resolvePeer(peer string) (uint64, error) {
	for _, p := range r.cfg.Peers {
		if p.Name == peer {
			return p.ID, nil
		}
	}
	if id, err := strconv.ParseUint(peer, 10, 64); err == nil {
		if _, ok := r.names[id]; ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("%w: %q is not in the peer list", ErrBadPeer, peer)
}

// startForce runs on the raft goroutine.
func (g *group) startForce(req forceRequest) {
	fail := func(err error) { req.result <- forceOutcome{err: err} }
	switch {
	case g.force != nil:
		fail(fmt.Errorf("%w (to %s)", ErrForceBusy, g.r.peerName(g.force.peer)))
		return
	case !g.isLeader.Load():
		leader := "none known"
		if g.lead != raft.None {
			leader = g.r.peerName(g.lead)
		}
		fail(fmt.Errorf("%w (leader: %s)", ErrNotLeader, leader))
		return
	case req.peer == g.r.self.ID:
		fail(fmt.Errorf("%w: %s is the leader itself", ErrBadPeer, g.r.peerName(req.peer)))
		return
	}
	voters := g.confState.GetVoters()
	known := false
	for _, v := range voters {
		known = known || v == req.peer
	}
	if !known {
		fail(fmt.Errorf("%w: %s is not a voter", ErrBadPeer, g.r.peerName(req.peer)))
		return
	}
	if len(voters) < 3 {
		fail(fmt.Errorf("%w: with %d voters the log cannot advance without %s; a forced snapshot needs at least 3", ErrBadPeer, len(voters), g.r.peerName(req.peer)))
		return
	}
	snapshotting := false
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == req.peer && pr.State == tracker.StateSnapshot {
			snapshotting = true
		}
	})
	if snapshotting {
		fail(fmt.Errorf("%w: %s is already receiving a snapshot", ErrForceBusy, g.r.peerName(req.peer)))
		return
	}
	id := g.r.nextRequestID()
	g.isolated = req.peer
	if err := g.rn.Propose(encodeCommand(command{kind: cmdNoop, requestID: id})); err != nil {
		g.isolated = 0
		fail(fmt.Errorf("propose no-op: %w", err))
		return
	}
	g.force = &forceState{peer: req.peer, requestID: id, deadline: time.Now().Add(forceTimeout), result: req.result}
	g.log.Info("forcing a snapshot transfer", "peer", g.r.peerName(req.peer))
}

func (g *group) onForceApplied(requestID uint64) {
	if g.force != nil && g.force.phase == forceApplying && g.force.requestID == requestID {
		g.force.phase = forceCompact
	}
}

// forceCompacted runs once the log is compacted past everything the peer
// has: stop withholding, and make raft probe the peer again.
func (g *group) forceCompacted() {
	g.force.phase = forceSending
	g.isolated = 0
	g.rn.ReportUnreachable(g.force.peer)
}

func (g *group) onSnapshotSent(m *raftpb.Message) {
	if g.force == nil || g.force.phase != forceSending || m.GetTo() != g.force.peer {
		return
	}
	g.force.result <- forceOutcome{res: ForceSnapshotResult{
		Group:         g.id,
		Peer:          g.r.peerName(m.GetTo()),
		SnapshotIndex: m.GetSnapshot().GetMetadata().GetIndex(),
		SnapshotBytes: len(m.GetSnapshot().GetData()),
	}}
	g.force = nil
}

func (g *group) failForce(err error) {
	if g.force == nil {
		return
	}
	g.log.Warn("forced snapshot abandoned", "peer", g.r.peerName(g.force.peer), "err", err)
	g.force.result <- forceOutcome{err: err}
	if g.isolated != 0 {
		// Withheld appends left the peer's progress stuck; probing again
		// resumes normal replication.
		g.rn.ReportUnreachable(g.isolated)
		g.isolated = 0
	}
	g.force = nil
}
