package loadgen_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lanectl/lanectl/node/loadgen"
	"github.com/lanectl/lanectl/node/nodetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRunWritesAndForcesSnapshots(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Env: []nodetest.Env{nodetest.FourLane(), nodetest.Legacy(), nodetest.FourLane()}})
	leader := c.WaitLeader(15 * time.Second)
	var progress []loadgen.Progress
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets:       c.URLs(),
		Rate:          200,
		ValueSize:     512,
		Keys:          100,
		Duration:      1500 * time.Millisecond,
		SnapshotEvery: 400 * time.Millisecond,
		ProgressEvery: 500 * time.Millisecond,
		Progress:      func(p loadgen.Progress) { progress = append(progress, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.WritesOK < 100 || res.WritesFailed != 0 {
		t.Errorf("got %d writes ok, %d failed (%v), want >= 100 ok and none failed", res.WritesOK, res.WritesFailed, res.Errors)
	}
	if res.SnapshotsForced < 2 || res.SnapshotsFailed != 0 {
		t.Errorf("got %d snapshots forced, %d failed (%s), want >= 2 and none failed", res.SnapshotsForced, res.SnapshotsFailed, res.LastSnapshotError)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("got p50 %v p99 %v max %v, want 0 < p50 <= p99 <= max", res.P50, res.P99, res.Max)
	}
	if len(progress) < 2 {
		t.Errorf("got %d progress reports, want >= 2", len(progress))
	}
	// The keys written are in the store, on the leader at least.
	if _, ok, err := c.Get(leader, "k00000042"); err != nil || !ok {
		t.Errorf("key k00000042 on the leader: present %v, err %v; want present", ok, err)
	}
}

// TestRunSpreadsOverGroups: against replicas running three raft groups,
// writes land in every group and the forced snapshots go group by group.
func TestRunSpreadsOverGroups(t *testing.T) {
	const groups = 3
	c := nodetest.StartCluster(t, 3, nodetest.Options{Groups: groups, Env: []nodetest.Env{nodetest.FourLane(), nodetest.FourLane(), nodetest.FourLane()}})
	c.WaitLeaders(groups, 15*time.Second)
	before, err := c.Status(0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets:       c.URLs(),
		Rate:          200,
		ValueSize:     256,
		Keys:          300,
		Duration:      2 * time.Second,
		SnapshotEvery: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.WritesFailed != 0 || res.SnapshotsFailed != 0 || res.SnapshotsForced < groups {
		t.Fatalf("got %d writes failed (%v), %d snapshots forced, %d failed (%s); want no failures and >= %d snapshots",
			res.WritesFailed, res.Errors, res.SnapshotsForced, res.SnapshotsFailed, res.LastSnapshotError, groups)
	}
	installed := make([]uint64, groups)
	for i := range c.N() {
		st, err := c.Status(i)
		if err != nil {
			t.Fatal(err)
		}
		for g, gs := range st.Groups {
			installed[g] += gs.SnapshotsInstalled
			if i == 0 && gs.Commit <= before.Groups[g].Commit {
				t.Errorf("group %d committed nothing during the run (commit %d before, %d after)", g, before.Groups[g].Commit, gs.Commit)
			}
		}
	}
	for g, n := range installed {
		if n == 0 {
			t.Errorf("group %d: no forced snapshot installed on any follower (by group: %v)", g, installed)
		}
	}
}

func TestRunCountsFailures(t *testing.T) {
	// A target nobody listens on: every write fails, the run still ends.
	res, err := loadgen.Run(t.Context(), loadgen.Config{
		Targets:      []string{"http://127.0.0.1:1"},
		Rate:         50,
		Duration:     300 * time.Millisecond,
		WriteTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.WritesOK != 0 || res.WritesFailed == 0 || res.Errors["connection error"] != res.WritesFailed {
		t.Errorf("got ok %d failed %d errors %v, want only connection errors", res.WritesOK, res.WritesFailed, res.Errors)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	tests := []struct {
		cfg  loadgen.Config
		want string
	}{
		{loadgen.Config{}, "no targets"},
		{loadgen.Config{Targets: []string{"127.0.0.1:9101"}}, "want http://HOST:PORT"},
		{loadgen.Config{Targets: []string{"http://127.0.0.1:9101"}, Rate: -1}, "rate -1"},
	}
	for _, tt := range tests {
		_, err := loadgen.Run(context.Background(), tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%+v): got %v, want error containing %q", tt.cfg, err, tt.want)
		}
	}
}
