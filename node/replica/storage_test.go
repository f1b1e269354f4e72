package replica

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

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
	snap := &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: new(uint64(3)), Term: new(uint64(2)), ConfState: cs}}
	if err := s.saveSnapshot(snap, 2); err != nil {
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
	if st.snapshot.GetMetadata().GetIndex() != 3 || string(st.snapshot.GetData()) != "state" {
		t.Errorf("got snapshot %v, want index 3 with data %q", st.snapshot.GetMetadata(), "state")
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
