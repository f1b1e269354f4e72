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

// deliver is the transport's Handler: it queues an inbound message for its
// group's raft loop, waiting while the queue is full so a busy group slows
// that lane of its sender instead of dropping. A MsgSnap is acknowledged to
// its sender when this returns nil.
func (r *Replica) deliver(ctx context.Context, group uint64, m *raftpb.Message) error {
	if group >= uint64(len(r.groups)) {
		return fmt.Errorf("%s from %s is for raft group %d, but this replica runs %d groups", m.GetType(), r.peerName(m.GetFrom()), group, len(r.groups))
	}
	return r.groups[group].deliver(ctx, m)
}

func (g *group) deliver(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgSnap {
		// A damaged snapshot is refused here, so the sender hears of it and
		// raft retries, instead of the raft loop failing on it.
		if err := checkSnapshot(m.GetSnapshot().GetData()); err != nil {
			g.log.Warn("refusing snapshot", "from", g.r.peerName(m.GetFrom()), "err", err)
			return fmt.Errorf("snapshot from %s: %w", g.r.peerName(m.GetFrom()), err)
		}
	}
	select {
	case g.recvc <- m:
		return nil
	case <-g.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop is the raft goroutine. When ctx is cancelled a leader first hands
// its leadership to a follower (see handOff), so the cluster elects a new
// leader at once instead of waiting out an election timeout.
func (g *group) loop(ctx context.Context) error {
	ticker := time.NewTicker(g.r.cfg.TickInterval)
	defer ticker.Stop()
	defer g.failForce(ErrStopped)
	// A snapshot still being written finishes before the files close.
	defer g.snapWG.Wait()
	done := ctx.Done()
	var handOffUntil time.Time
	for {
		select {
		case <-done:
			done = nil
			handOffUntil = g.handOff()
		case <-ticker.C:
			g.rn.Tick()
			g.onTick()
		case m := <-g.recvc:
			g.step(m)
		case p := <-g.propc:
			g.props = append(g.props, p)
		case req := <-g.forcec:
			g.startForce(req)
		case req := <-g.movec:
			req.result <- g.startMove(req.to)
		case job := <-g.snapc:
			if err := g.finishSnapshot(job); err != nil {
				g.log.Error("raft loop failed; stopping", "err", err)
				return err
			}
		case <-g.dg.Pending():
			g.dg.ApplyReports(g.rn)
		}
		woke := time.Now()
		g.drainInputs()
		g.proposeQueued()
		if err := g.handleReady(); err != nil {
			g.log.Error("raft loop failed; stopping", "err", err)
			return err
		}
		g.noteIteration(time.Since(woke))
		if !handOffUntil.IsZero() && g.handedOff(handOffUntil) {
			return nil
		}
	}
}

// drainInputs steps whatever else is already queued, so that one Ready (and
// one fsync) covers a burst of messages and proposals instead of one each.
func (g *group) drainInputs() {
	for range maxDrain {
		select {
		case m := <-g.recvc:
			g.step(m)
		case p := <-g.propc:
			g.props = append(g.props, p)
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

func (g *group) step(m *raftpb.Message) {
	if err := g.rn.Step(m); err != nil {
		g.log.Debug("raft refused inbound message", "type", m.GetType().String(), "from", g.r.peerName(m.GetFrom()), "err", err)
		return
	}
	if fromLeader(m.GetType()) {
		g.lastContact.Store(time.Now().UnixNano())
	}
}

func (g *group) onTick() {
	g.ticks++
	if g.force != nil && time.Now().After(g.force.deadline) {
		g.failForce(fmt.Errorf("%w: peer %s was not sent a snapshot within %v", errForceTimeout, g.r.peerName(g.force.peer), forceTimeout))
	}
	if g.lead != 0 && g.lead != g.r.self.ID && g.ticks%healthProbeTicks == 0 {
		g.readSeq++
		g.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, g.readSeq))
	}
}

// handleReady processes Ready batches in the order raft requires: persist
// the snapshot, entries and HardState (fsynced), then send messages, then
// apply committed entries, then Advance.
func (g *group) handleReady() error {
	for i := 0; i < maxReadyPerWake && g.rn.HasReady(); i++ {
		rd := g.rn.Ready()
		if rd.SoftState != nil {
			g.onSoftState(rd.SoftState)
		}
		if err := g.store.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := g.ms.ApplySnapshot(rd.Snapshot); err != nil {
				return fmt.Errorf("install snapshot %d: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
			}
		}
		if err := g.ms.Append(rd.Entries); err != nil {
			return fmt.Errorf("append to in-memory log: %w", err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := g.ms.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("set hard state: %w", err)
			}
		}
		g.send(rd.Messages)
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := g.installSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		if err := g.applyEntries(rd.CommittedEntries); err != nil {
			return err
		}
		for _, rs := range rd.ReadStates {
			g.leaderCommit, g.leaderCommitAt = rs.Index, time.Now()
		}
		g.rn.Advance(rd)
		g.dg.ApplyReports(g.rn)
		g.afterApply()
	}
	g.publish()
	return nil
}

func (g *group) onSoftState(ss *raft.SoftState) {
	if ss.Lead != raft.None && ss.Lead != g.lead {
		g.metrics.leaderChanges.Inc()
		g.log.Info("leader changed", "leader", g.r.peerName(ss.Lead))
	}
	if ss.Lead != g.lead {
		g.leaderCommit, g.leaderCommitAt = 0, time.Time{}
	}
	g.lead = ss.Lead
	leader := ss.RaftState == raft.StateLeader
	g.isLeader.Store(leader)
	if leader {
		g.metrics.isLeader.Set(1)
	} else {
		g.metrics.isLeader.Set(0)
		if g.force != nil {
			g.failForce(fmt.Errorf("%w: lost leadership", ErrNotLeader))
		}
	}
}

// send hands messages to the dispatcher. While a forced snapshot is being
// prepared, appends to its target are withheld so the target falls behind
// the compaction point (see startForce).
func (g *group) send(msgs []*raftpb.Message) {
	if g.isolated != 0 || g.force != nil {
		kept := msgs[:0:0]
		for _, m := range msgs {
			if m.GetTo() == g.isolated && m.GetType() == raftpb.MsgApp {
				continue
			}
			if m.GetType() == raftpb.MsgSnap {
				g.onSnapshotSent(m)
			}
			kept = append(kept, m)
		}
		msgs = kept
	}
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			g.log.Info("sending snapshot", "peer", g.r.peerName(m.GetTo()),
				"index", m.GetSnapshot().GetMetadata().GetIndex(), "bytes", len(m.GetSnapshot().GetData()))
		}
	}
	g.dg.Dispatch(msgs)
}

// noteIteration keeps the longest loop iteration: while one runs, the group
// neither ticks nor steps messages, so its heartbeats (as leader) or its
// answers (as follower) wait.
func (g *group) noteIteration(d time.Duration) {
	for {
		old := g.longestIter.Load()
		if int64(d) <= old || g.longestIter.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// TakeLongestIteration returns the longest iteration of raft group group's
// loop (the time from waking on an input to waiting again) since the last
// call, and starts over. Benchmarks read it around a forced snapshot: the
// group's raft goroutine is stalled for that long.
func (r *Replica) TakeLongestIteration(group uint64) time.Duration {
	if group >= uint64(len(r.groups)) {
		return 0
	}
	return time.Duration(r.groups[group].longestIter.Swap(0))
}
