package replica

import (
	"fmt"
	"time"
)

// afterApply finishes a forced snapshot's compaction, and snapshots and
// compacts when enough entries were applied since the last snapshot.
func (r *Replica) afterApply() error {
	if r.force != nil && r.force.phase == forceCompact {
		if err := r.snapshotAndCompact(r.applied, r.applied); err != nil {
			return err
		}
		r.forceCompacted()
		return nil
	}
	if r.applied-r.snapIndex < r.cfg.SnapshotEntries {
		return nil
	}
	var compactTo uint64
	if r.applied > r.cfg.SnapshotCatchUpEntries {
		compactTo = r.applied - r.cfg.SnapshotCatchUpEntries
	}
	return r.snapshotAndCompact(r.applied, compactTo)
}

// snapshotAndCompact snapshots the state machine at index at (the applied
// index) and drops the log up to compactTo, on disk and in memory.
func (r *Replica) snapshotAndCompact(at, compactTo uint64) error {
	start := time.Now()
	data := r.kv.snapshotData()
	snap, err := r.ms.CreateSnapshot(at, r.confState, data)
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", at, err)
	}
	first, _ := r.ms.FirstIndex()
	if compactTo < first {
		compactTo = first - 1
	}
	if err := r.store.saveSnapshot(snap, compactTo); err != nil {
		return err
	}
	if compactTo >= first {
		if err := r.ms.Compact(compactTo); err != nil {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	r.snapIndex = at
	r.log.Info("snapshot taken", "index", at, "compacted_to", compactTo, "bytes", len(data), "took", time.Since(start).Round(time.Millisecond))
	return nil
}
