package replica

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Internal limits of the raft loop.
const (
	// healthProbeTicks: a follower asks the leader for its commit index
	// (raft ReadIndex, heartbeat lane) this often, for /healthz.
	healthProbeTicks = 5
	// maxReadyPerWake bounds the Ready batches handled before the loop
	// looks at its channels again.
	maxReadyPerWake = 64
	// maxDrain bounds the inputs batched into one Ready.
	maxDrain = 256
	// maxBatchBytes bounds the client commands packed into one entry.
	maxBatchBytes = 1 << 20
	// inboundQueue is the buffer between the transport and the raft loop.
	inboundQueue = 4096
)

// deliver is the transport's Handler: it queues an inbound message for the
// raft loop, waiting while the queue is full so a busy replica slows its
// senders instead of dropping. A MsgSnap is acknowledged to its sender when
// this returns nil.
func (r *Replica) deliver(ctx context.Context, group uint64, m *raftpb.Message) error {
	if group != 0 {
		return fmt.Errorf("message for raft group %d from %s: this replica runs group 0 only", group, r.peerName(m.GetFrom()))
	}
	if m.GetType() == raftpb.MsgSnap {
		// A damaged snapshot is refused here, so the sender hears of it and
		// raft retries, instead of the raft loop failing on it.
		if err := checkSnapshot(m.GetSnapshot().GetData()); err != nil {
			r.log.Warn("refusing snapshot", "from", r.peerName(m.GetFrom()), "err", err)
			return fmt.Errorf("snapshot from %s: %w", r.peerName(m.GetFrom()), err)
		}
	}
	select {
	case r.recvc <- m:
		return nil
	case <-r.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the raft goroutine. When ctx is cancelled a leader first hands
// its leadership to a follower (see handOff), so the cluster elects a new
// leader at once instead of waiting out an election timeout.
func (r *Replica) loop(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.TickInterval)
	defer ticker.Stop()
	defer r.failForce(ErrStopped)
	done := ctx.Done()
	var handOffUntil time.Time
	for {
		select {
		case <-done:
			done = nil
			handOffUntil = r.handOff()
		case <-ticker.C:
			r.rn.Tick()
			r.onTick()
		case m := <-r.recvc:
			r.step(m)
		case p := <-r.propc:
			r.props = append(r.props, p)
		case req := <-r.forcec:
			r.startForce(req)
		case <-r.disp.Pending():
			r.disp.ApplyReports(r.rn)
		}
		r.drainInputs()
		r.proposeQueued()
		if err := r.handleReady(); err != nil {
			r.log.Error("raft loop failed; stopping", "err", err)
			return err
		}
		if !handOffUntil.IsZero() && r.handedOff(handOffUntil) {
			return nil
		}
	}
}

// drainInputs steps whatever else is already queued, so that one Ready (and
// one fsync) covers a burst of messages and proposals instead of one each.
func (r *Replica) drainInputs() {
	for range maxDrain {
		select {
		case m := <-r.recvc:
			r.step(m)
		case p := <-r.propc:
			r.props = append(r.props, p)
		default:
			return
		}
	}
}

// fromLeader reports whether only a leader sends messages of type t, so
// receiving one is contact with the leader.
func fromLeader(t raftpb.MessageType) bool {
	switch t {
	case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap, raftpb.MsgReadIndexResp, raftpb.MsgTimeoutNow:
		return true
	}
	return false
}

func (r *Replica) step(m *raftpb.Message) {
	if err := r.rn.Step(m); err != nil {
		r.log.Debug("raft refused inbound message", "type", m.GetType().String(), "from", r.peerName(m.GetFrom()), "err", err)
		return
	}
	if fromLeader(m.GetType()) {
		r.lastContact.Store(time.Now().UnixNano())
	}
}

func (r *Replica) onTick() {
	r.ticks++
	if r.force != nil && time.Now().After(r.force.deadline) {
		r.failForce(fmt.Errorf("%w: peer %s was not sent a snapshot within %v", errForceTimeout, r.peerName(r.force.peer), forceTimeout))
	}
	if r.lead != 0 && r.lead != r.self.ID && r.ticks%healthProbeTicks == 0 {
		r.readSeq++
		r.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.readSeq))
	}
}

// handleReady processes Ready batches in the order raft requires: persist
// the snapshot, entries and HardState (fsynced), then send messages, then
// apply committed entries, then Advance.
func (r *Replica) handleReady() error {
	for i := 0; i < maxReadyPerWake && r.rn.HasReady(); i++ {
		rd := r.rn.Ready()
		if rd.SoftState != nil {
			r.onSoftState(rd.SoftState)
		}
		if err := r.store.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := r.ms.ApplySnapshot(rd.Snapshot); err != nil {
				return fmt.Errorf("install snapshot %d: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
			}
		}
		if err := r.ms.Append(rd.Entries); err != nil {
			return fmt.Errorf("append to in-memory log: %w", err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := r.ms.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("set hard state: %w", err)
			}
		}
		r.send(rd.Messages)
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := r.installSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		if err := r.applyEntries(rd.CommittedEntries); err != nil {
			return err
		}
		for _, rs := range rd.ReadStates {
			r.leaderCommit, r.leaderCommitAt = rs.Index, time.Now()
		}
		r.rn.Advance(rd)
		r.disp.ApplyReports(r.rn)
		if err := r.afterApply(); err != nil {
			return err
		}
	}
	r.publish()
	return nil
}

func (r *Replica) onSoftState(ss *raft.SoftState) {
	if ss.Lead != raft.None && ss.Lead != r.lead {
		r.metrics.leaderChanges.Inc()
		r.log.Info("leader changed", "leader", r.peerName(ss.Lead))
	}
	if ss.Lead != r.lead {
		r.leaderCommit, r.leaderCommitAt = 0, time.Time{}
	}
	r.lead = ss.Lead
	leader := ss.RaftState == raft.StateLeader
	r.isLeader.Store(leader)
	if leader {
		r.metrics.isLeader.Set(1)
	} else {
		r.metrics.isLeader.Set(0)
		if r.force != nil {
			r.failForce(fmt.Errorf("%w: lost leadership", ErrNotLeader))
		}
	}
}

// send hands messages to the dispatcher. While a forced snapshot is being
// prepared, appends to its target are withheld so the target falls behind
// the compaction point (see startForce).
func (r *Replica) send(msgs []*raftpb.Message) {
	if r.isolated != 0 || r.force != nil {
		kept := msgs[:0:0]
		for _, m := range msgs {
			if m.GetTo() == r.isolated && m.GetType() == raftpb.MsgApp {
				continue
			}
			if m.GetType() == raftpb.MsgSnap {
				r.onSnapshotSent(m)
			}
			kept = append(kept, m)
		}
		msgs = kept
	}
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			r.log.Info("sending snapshot", "peer", r.peerName(m.GetTo()),
				"index", m.GetSnapshot().GetMetadata().GetIndex(), "bytes", len(m.GetSnapshot().GetData()))
		}
	}
	r.disp.Dispatch(msgs)
}
