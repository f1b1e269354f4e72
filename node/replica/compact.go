package replica

import (
	"fmt"
	"time"
)

// afterApply finishes a forced snapshot's compaction, and snapshots and
// compacts when enough entries were applied since the last snapshot.
func (g *group) afterApply() error {
	if g.force != nil && g.force.phase == forceCompact {
		if err := g.snapshotAndCompact(g.applied, g.applied); err != nil {
			return err
		}
		g.forceCompacted()
		return nil
	}
	if g.applied-g.snapIndex < g.r.cfg.SnapshotEntries {
		return nil
	}
	var compactTo uint64
	if g.applied > g.r.cfg.SnapshotCatchUpEntries {
		compactTo = g.applied - g.r.cfg.SnapshotCatchUpEntries
	}
	return g.snapshotAndCompact(g.applied, compactTo)
}

// snapshotAndCompact snapshots the state machine at index at (the applied
// index) and drops the log up to compactTo, on disk and in memory.
func (g *group) snapshotAndCompact(at, compactTo uint64) error {
	start := time.Now()
	data := g.kv.snapshotData()
	snap, err := g.ms.CreateSnapshot(at, g.confState, data)
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", at, err)
	}
	first, _ := g.ms.FirstIndex()
	if compactTo < first {
		compactTo = first - 1
	}
	if err := g.store.saveSnapshot(snap, compactTo); err != nil {
		return err
	}
	if compactTo >= first {
		if err := g.ms.Compact(compactTo); err != nil {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	g.snapIndex = at
	g.log.Info("snapshot taken", "index", at, "compacted_to", compactTo, "bytes", len(data), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
