package replica

import (
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A snapshot the group makes of its own state is made in two halves, so the
// raft goroutine never serialises or writes one: startSnapshot (on the raft
// goroutine) freezes the state machine at the applied index, which costs a
// map copy; a goroutine of its own serialises that view and writes it to a
// snapshot file with fsync; finishSnapshot (back on the raft goroutine)
// hands the data to raft's storage, records the snapshot in raft.db and
// compacts the log. At most one is in flight per group.

// snapshotJob is one snapshot being made off the raft goroutine.
type snapshotJob struct {
	at, compactTo uint64
	confState     *raftpb.ConfState
	forced        bool
	started       time.Time
	onLoop        time.Duration // spent on the raft goroutine to start it

	// Set by the goroutine.
	data []byte
	file string
	err  error
}

// afterApply starts a forced snapshot once its no-op is applied, and a
// periodic one when enough entries were applied since the last snapshot.
func (g *group) afterApply() {
	if g.snapping {
		return
	}
	if g.force != nil && g.force.phase == forceCompact {
		g.force.phase = forceSnapshotting
		g.startSnapshot(g.applied, g.applied, true)
		return
	}
	if g.applied-g.snapIndex < g.r.cfg.SnapshotEntries {
		return
	}
	var compactTo uint64
	if g.applied > g.r.cfg.SnapshotCatchUpEntries {
		compactTo = g.applied - g.r.cfg.SnapshotCatchUpEntries
	}
	g.startSnapshot(g.applied, compactTo, false)
}

// startSnapshot freezes the state at index at (the applied index) and
// leaves the rest to a goroutine; finishSnapshot takes over when it is done.
func (g *group) startSnapshot(at, compactTo uint64, forced bool) {
	start := time.Now()
	view := g.kv.view()
	job := &snapshotJob{
		at:        at,
		compactTo: compactTo,
		confState: proto.Clone(g.confState).(*raftpb.ConfState),
		forced:    forced,
		started:   start,
	}
	g.snapping = true
	job.onLoop = time.Since(start)
	g.snapWG.Go(func() {
		job.data = view.encode()
		job.file, job.err = g.store.writeSnapshotFile(at, job.data)
		g.snapc <- job
	})
}

// finishSnapshot runs on the raft goroutine once a snapshot's file is
// durable: raft's storage gets the data, raft.db records it, and the log up
// to compactTo is dropped on disk and in memory.
func (g *group) finishSnapshot(job *snapshotJob) error {
	g.snapping = false
	if job.err != nil {
		return job.err
	}
	start := time.Now()
	snap, err := g.ms.CreateSnapshot(job.at, job.confState, job.data)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		// A snapshot from the leader was installed meanwhile; it covers
		// this one, whose file the next recorded snapshot removes.
		g.log.Info("snapshot superseded while it was written", "index", job.at, "snapshot_index", g.snapIndex)
		if job.forced && g.force != nil {
			g.failForce(fmt.Errorf("forced snapshot at %d superseded by snapshot %d", job.at, g.snapIndex))
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", job.at, err)
	}
	first, _ := g.ms.FirstIndex()
	compactTo := job.compactTo
	if compactTo < first {
		compactTo = first - 1
	}
	if err := g.store.saveSnapshot(snap, job.file, compactTo); err != nil {
		return err
	}
	if compactTo >= first {
		if err := g.ms.Compact(compactTo); err != nil {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	g.snapIndex = job.at
	onLoop := job.onLoop + time.Since(start)
	g.log.Info("snapshot taken", "index", job.at, "compacted_to", compactTo, "bytes", len(job.data),
		"took", time.Since(job.started).Round(time.Millisecond), "on_raft_loop", onLoop.Round(time.Microsecond))
	if job.forced && g.force != nil && g.force.phase == forceSnapshotting {
		g.forceCompacted()
	}
	return nil
}
