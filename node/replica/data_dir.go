package replica

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// openData opens raft.db and fsm.db, or creates both in an empty directory.
// Exactly one of them present means lost state, which is refused.
func (g *group) openData() error {
	dir := g.dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	raftPath, fsmPath := filepath.Join(dir, RaftDBFile), filepath.Join(dir, FSMDBFile)
	raftOK, err := fileExists(raftPath)
	if err != nil {
		return err
	}
	fsmOK, err := fileExists(fsmPath)
	if err != nil {
		return err
	}
	switch {
	case raftOK && !fsmOK:
		return fmt.Errorf("%s is missing but %s exists: refusing to start with part of the replica's state (restore the file, or move both away to rejoin as an empty replica)", fsmPath, raftPath)
	case !raftOK && fsmOK:
		return fmt.Errorf("%s is missing but %s exists: refusing to start with part of the replica's state (restore the file, or move both away to rejoin as an empty replica)", raftPath, fsmPath)
	case !raftOK:
		g.log.Info("initialising empty data directory", "dir", dir)
		cs := &raftpb.ConfState{}
		for _, p := range g.r.cfg.Peers {
			cs.Voters = append(cs.Voters, p.ID)
		}
		slices.Sort(cs.Voters)
		if g.store, err = createRaftStore(raftPath, cs); err != nil {
			return err
		}
		if g.kv, err = openKVStore(fsmPath, g.r.cfg.SyncMode, true); err != nil {
			return err
		}
		g.ms = raft.NewMemoryStorage()
		g.confState = cs
		// An index-0 snapshot carrying only the membership is how raft
		// expects a static cluster to be bootstrapped: every member starts
		// from the same empty log.
		return g.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: cs}})
	}

	var st *persistedRaft
	if g.store, st, err = openRaftStore(raftPath); err != nil {
		return err
	}
	if g.kv, err = openKVStore(fsmPath, g.r.cfg.SyncMode, false); err != nil {
		return err
	}
	if err := g.checkMembership(st.confState, raftPath); err != nil {
		return err
	}
	g.ms = raft.NewMemoryStorage()
	g.confState = st.confState
	snap := st.snapshot
	if snap == nil {
		snap = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: st.confState}}
	}
	g.snapIndex = snap.GetMetadata().GetIndex()
	if err := g.ms.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("load snapshot from %s: %w", raftPath, err)
	}
	if err := g.ms.Append(st.entries); err != nil {
		return fmt.Errorf("load log from %s: %w", raftPath, err)
	}
	if err := g.ms.SetHardState(st.hardState); err != nil {
		return fmt.Errorf("load hard state from %s: %w", raftPath, err)
	}
	applied := g.kv.appliedIndex()
	if applied > st.hardState.GetCommit() {
		return fmt.Errorf("%s: %w: applied index %d is ahead of the commit index %d in %s", fsmPath, ErrCorrupt, applied, st.hardState.GetCommit(), raftPath)
	}
	if applied < g.snapIndex {
		// In nosync mode a crash can lose applies that the log has since
		// compacted away; the snapshot holds them.
		g.log.Info("state machine is behind the raft snapshot; restoring it", "applied", applied, "snapshot_index", g.snapIndex)
		if _, err := g.kv.restore(snap.GetData(), g.snapIndex); err != nil {
			return fmt.Errorf("%s: %w", raftPath, err)
		}
	}
	g.applied = g.kv.appliedIndex()
	keys, size := g.kv.size()
	g.log.Info("loaded data directory", "dir", dir, "applied", g.applied, "commit", st.hardState.GetCommit(),
		"snapshot_index", g.snapIndex, "log_entries", len(st.entries), "keys", keys, "bytes", size)
	return nil
}

// checkMembership refuses a --peers list that names other raft IDs than the
// stored membership: raft would otherwise run with two views of the cluster.
func (g *group) checkMembership(cs *raftpb.ConfState, path string) error {
	stored := slices.Sorted(slices.Values(cs.GetVoters()))
	var given []uint64
	for _, p := range g.r.cfg.Peers {
		given = append(given, p.ID)
	}
	slices.Sort(given)
	if !slices.Equal(stored, given) {
		return fmt.Errorf("peers name raft IDs %v but %s records the membership %v", given, path, stored)
	}
	return nil
}
