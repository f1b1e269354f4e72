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
	// errForceTimeout is returned when raft did not send the snapshot in time.
	errForceTimeout = errors.New("forced snapshot timed out")
)

// ForceSnapshotResult describes the MsgSnap a forced transfer made raft send.
type ForceSnapshotResult struct {
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

// ForceSnapshot makes raft send a full snapshot to peer (a name from the peer
// list, or a raft ID). Only the leader can do it. It returns once the MsgSnap
// is handed to the dispatcher, which puts it in the snapshot lane (the
// normal lane in the legacy layout).
//
// Raft sends MsgSnap only to a follower that needs entries the leader has
// compacted away, so the leader makes that true: it withholds appends to the
// peer, commits a no-op with the other replicas, snapshots and compacts the
// log through that no-op, then reports the peer unreachable so raft probes it
// again and finds the entries gone. The cluster needs a quorum without the
// peer, so three replicas or more.
func (r *Replica) ForceSnapshot(ctx context.Context, peer string) (ForceSnapshotResult, error) {
	id, err := r.resolvePeer(peer)
	if err != nil {
		return ForceSnapshotResult{}, err
	}
	req := forceRequest{peer: id, result: make(chan forceOutcome, 1)}
	select {
	case r.forcec <- req:
	case <-ctx.Done():
		return ForceSnapshotResult{}, context.Cause(ctx)
	case <-r.stopped:
		return ForceSnapshotResult{}, ErrStopped
	}
	select {
	case out := <-req.result:
		return out.res, out.err
	case <-ctx.Done():
		return ForceSnapshotResult{}, context.Cause(ctx)
	case <-r.stopped:
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
func (r *Replica) startForce(req forceRequest) {
	fail := func(err error) { req.result <- forceOutcome{err: err} }
	switch {
	case r.force != nil:
		fail(fmt.Errorf("%w (to %s)", ErrForceBusy, r.peerName(r.force.peer)))
		return
	case !r.isLeader.Load():
		leader := "none known"
		if r.lead != raft.None {
			leader = r.peerName(r.lead)
		}
		fail(fmt.Errorf("%w (leader: %s)", ErrNotLeader, leader))
		return
	case req.peer == r.self.ID:
		fail(fmt.Errorf("%w: %s is the leader itself", ErrBadPeer, r.peerName(req.peer)))
		return
	}
	voters := r.confState.GetVoters()
	known := false
	for _, v := range voters {
		known = known || v == req.peer
	}
	if !known {
		fail(fmt.Errorf("%w: %s is not a voter", ErrBadPeer, r.peerName(req.peer)))
		return
	}
	if len(voters) < 3 {
		fail(fmt.Errorf("%w: with %d voters the log cannot advance without %s; a forced snapshot needs at least 3", ErrBadPeer, len(voters), r.peerName(req.peer)))
		return
	}
	snapshotting := false
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == req.peer && pr.State == tracker.StateSnapshot {
			snapshotting = true
		}
	})
	if snapshotting {
		fail(fmt.Errorf("%w: %s is already receiving a snapshot", ErrForceBusy, r.peerName(req.peer)))
		return
	}
	id := r.nextRequestID()
	r.isolated = req.peer
	if err := r.rn.Propose(encodeCommand(command{kind: cmdNoop, requestID: id})); err != nil {
		r.isolated = 0
		fail(fmt.Errorf("propose no-op: %w", err))
		return
	}
	r.force = &forceState{peer: req.peer, requestID: id, deadline: time.Now().Add(forceTimeout), result: req.result}
	r.log.Info("forcing a snapshot transfer", "peer", r.peerName(req.peer))
}

func (r *Replica) onForceApplied(requestID uint64) {
	if r.force != nil && r.force.phase == forceApplying && r.force.requestID == requestID {
		r.force.phase = forceCompact
	}
}

// forceCompacted runs once the log is compacted past everything the peer
// has: stop withholding, and make raft probe the peer again.
func (r *Replica) forceCompacted() {
	r.force.phase = forceSending
	r.isolated = 0
	r.rn.ReportUnreachable(r.force.peer)
}

func (r *Replica) onSnapshotSent(m *raftpb.Message) {
	if r.force == nil || r.force.phase != forceSending || m.GetTo() != r.force.peer {
		return
	}
	r.force.result <- forceOutcome{res: ForceSnapshotResult{
		Peer:          r.peerName(m.GetTo()),
		SnapshotIndex: m.GetSnapshot().GetMetadata().GetIndex(),
		SnapshotBytes: len(m.GetSnapshot().GetData()),
	}}
	r.force = nil
}

func (r *Replica) failForce(err error) {
	if r.force == nil {
		return
	}
	r.log.Warn("forced snapshot abandoned", "peer", r.peerName(r.force.peer), "err", err)
	r.force.result <- forceOutcome{err: err}
	if r.isolated != 0 {
		// Withheld appends left the peer's progress stuck; probing again
		// resumes normal replication.
		r.rn.ReportUnreachable(r.isolated)
		r.isolated = 0
	}
	r.force = nil
}
