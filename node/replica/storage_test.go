package replica

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
	"go.etcd.io/raft/v3/raftpb"
)

func ent(index, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term), Data: []byte(data)}
}

func entryIndexes(ents []*raftpb.Entry) []uint64 {
	var out []uint64
	for _, e := range ents {
		out = append(out, e.GetIndex())
	}
	return out
}

func TestRaftStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), RaftDBFile)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}}
	s, err := createRaftStore(path, cs)
	if err != nil {
		t.Fatal(err)
	}
	hs := &raftpb.HardState{Term: new(uint64(2)), Vote: new(uint64(1)), Commit: new(uint64(3))}
	if err := s.save(hs, []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b"), ent(3, 2, "c"), ent(4, 2, "d")}, nil); err != nil {
		t.Fatal(err)
	}
	// A new leader overwrites the uncommitted suffix from index 4.
	if err := s.save(nil, []*raftpb.Entry{ent(4, 3, "D"), ent(5, 3, "E")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s, st, err := openRaftStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := entryIndexes(st.entries), []uint64{1, 2, 3, 4, 5}; !equalU64(got, want) {
		t.Errorf("got entries %v, want %v", got, want)
	}
	if got := string(st.entries[3].GetData()); got != "D" {
		t.Errorf("got entry 4 data %q, want the overwriting %q", got, "D")
	}
	if st.hardState.GetTerm() != 2 || st.hardState.GetCommit() != 3 {
		t.Errorf("got hard state %v, want term 2 commit 3", st.hardState)
	}
	if !equalU64(st.confState.GetVoters(), []uint64{1, 2, 3}) {
		t.Errorf("got voters %v, want [1 2 3]", st.confState.GetVoters())
	}

	// A snapshot at 3 keeping entry 3 for catch-up: load starts after it.
	state := kvView{data: map[string][]byte{"k": []byte("state")}}.encode()
	snap := &raftpb.Snapshot{Data: state, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(2)), ConfState: cs}}
	file, err := s.writeSnapshotFile(3, state)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.saveSnapshot(snap, file, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, st, err = openRaftStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if got, want := entryIndexes(st.entries), []uint64{4, 5}; !equalU64(got, want) {
		t.Errorf("after snapshot: got entries %v, want %v", got, want)
	}
	if st.snapshot.GetMetadata().GetIndex() != 3 || !bytes.Equal(st.snapshot.GetData(), state) {
		t.Errorf("got snapshot %v with %d bytes, want index 3 with the %d bytes written", st.snapshot.GetMetadata(), len(st.snapshot.GetData()), len(state))
	}
}

// TestSnapshotDataLivesInItsOwnFile: raft.db records a snapshot's metadata
// and file name only; the file is replaced by the next snapshot's, a file
// nothing records is removed on open, and a damaged one is refused.
func TestSnapshotDataLivesInItsOwnFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, RaftDBFile)
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	s, err := createRaftStore(path, cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.save(&raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(2))}, []*raftpb.Entry{ent(1, 1, "a"), ent(2, 1, "b")}, nil); err != nil {
		t.Fatal(err)
	}
	snapAt := func(i uint64) string {
		data := kvView{data: map[string][]byte{"k": fmt.Appendf(nil, "v%d", i)}}.encode()
		file, err := s.writeSnapshotFile(i, data)
		if err != nil {
			t.Fatal(err)
		}
		snap := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(i), Term: new(uint64(1)), ConfState: cs}}
		if err := s.saveSnapshot(snap, file, i); err != nil {
			t.Fatal(err)
		}
		return file
	}
	first := snapAt(1)
	second := snapAt(2)
	if _, err := os.Stat(filepath.Join(dir, first)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("snapshot file %s of the older snapshot: %v, want it removed", first, err)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keySnapshot); len(v) > 64 {
			t.Errorf("raft.db holds %d bytes of snapshot, want the metadata only", len(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := s.writeSnapshotFile(9, []byte("never recorded"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, st, err := openRaftStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.snapshotFile != second || string(st.snapshot.GetData()[:4]) != "LKV1" {
		t.Errorf("loaded snapshot from %q, want %q with its data", st.snapshotFile, second)
	}
	if _, err := os.Stat(filepath.Join(dir, orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan snapshot file: %v, want it removed on open", err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, second), []byte("LKV1 damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = openRaftStore(path)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), second) {
		t.Errorf("damaged snapshot file: got %v, want ErrCorrupt naming %s", err, second)
	}
}

// TestRaftStoreReadsInlineSnapshot: a raft.db written before snapshot
// files, with the data inside it, still loads.
func TestRaftStoreReadsInlineSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), RaftDBFile)
	cs := &raftpb.ConfState{Voters: []uint64{1}}
	s, err := createRaftStore(path, cs)
	if err != nil {
		t.Fatal(err)
	}
	data := kvView{data: map[string][]byte{"old": []byte("inline")}}.encode()
	err = s.db.Update(func(tx *bbolt.Tx) error {
		snap := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)), ConfState: cs}}
		if err := putProto(tx.Bucket(bucketMeta), keySnapshot, snap); err != nil {
			return err
		}
		return putProto(tx.Bucket(bucketMeta), keyHardState, &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(1))})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, st, err := openRaftStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	if !bytes.Equal(st.snapshot.GetData(), data) || st.snapshotFile != "" {
		t.Errorf("got %d bytes of snapshot from file %q, want the %d inline bytes", len(st.snapshot.GetData()), st.snapshotFile, len(data))
	}
}

func TestRaftStoreRejectsInconsistentState(t *testing.T) {
	path := filepath.Join(t.TempDir(), RaftDBFile)
	s, err := createRaftStore(path, &raftpb.ConfState{Voters: []uint64{1}})
	if err != nil {
		t.Fatal(err)
	}
	// A commit index beyond the log cannot come from this code; it stands
	// for a file edited or damaged behind the replica's back.
	hs := &raftpb.HardState{Term: new(uint64(1)), Commit: new(uint64(9))}
	if err := s.save(hs, []*raftpb.Entry{ent(1, 1, "a")}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = openRaftStore(path)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if want := "commit index 9 is beyond the last log entry 1"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %q, want it to name %s and say %q", err, path, want)
	}
}

func equalU64(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
