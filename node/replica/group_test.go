package replica

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupCountOfADataDirectoryIsFixed: keys go to groups by hash modulo
// the count, so a data directory written with one count is refused with
// another.
func TestGroupCountOfADataDirectoryIsFixed(t *testing.T) {
	layout := func(t *testing.T, groups ...uint64) string {
		dir := t.TempDir()
		for _, g := range groups {
			d := groupDir(dir, g)
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, RaftDBFile), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	tests := []struct {
		name   string
		have   []uint64
		groups int
		want   string // "" is accepted
	}{
		{"empty, one group", nil, 1, ""},
		{"empty, four groups", nil, 4, ""},
		{"one group, same count", []uint64{0}, 1, ""},
		{"four groups, same count", []uint64{0, 1, 2, 3}, 4, ""},
		{"one group, now four", []uint64{0}, 4, "holds 1 raft groups but the replica runs 4"},
		{"four groups, now two", []uint64{0, 1, 2, 3}, 2, "holds raft group 2 but the replica runs 2 groups"},
		{"four groups, now one", []uint64{0, 1, 2, 3}, 1, "holds raft group 1 but the replica runs 1 groups"},
		{"group 0 missing", []uint64{1}, 2, "not group 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkGroupDirs(layout(t, tt.have...), tt.groups)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want it accepted", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestKeyGroupSpreadsKeys(t *testing.T) {
	const groups, keys = 4, 4000
	count := make([]int, groups)
	for i := range keys {
		g := KeyGroup(fmt.Sprintf("key-%d", i), groups)
		if g >= groups {
			t.Fatalf("KeyGroup = %d, want below %d", g, groups)
		}
		count[g]++
	}
	for g, n := range count {
		if n < keys/groups/2 {
			t.Errorf("group %d got %d of %d keys: %v", g, n, keys, count)
		}
	}
	if KeyGroup("anything", 1) != 0 {
		t.Error("a single group is not group 0")
	}
}
