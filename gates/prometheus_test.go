package gates_test

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// TestBackfilled24h evaluates 24h windows over history written with promtool
// before a real Prometheus starts, and checks the embedded engine gives the
// same answers over the same blocks.
func TestBackfilled24h(t *testing.T) {
	const minutes = 26 * 60
	// Samples sit 7s past the minute and the window ends 30s past it, so
	// no sample lies on a window edge (where Prometheus 2 and 3 differ on
	// whether a range includes it).
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
	start := end.Add(-time.Duration(minutes) * time.Minute).Add(-23 * time.Second)
	flagOn := minutes - 24*60 - 10 // ten minutes before the window starts
	rs := []promtest.ReplicaHistory{
		{Name: "n1", FlagOn: -1, DropEvery: 100},
		{Name: "n2", FlagOn: flagOn, DropEvery: 120},
		{Name: "n3", FlagOn: -1, DropEvery: 100},
		// n4 restarted with the flag like n2 but dropped heartbeats: the
		// counter series is created by the first drop, inside the window.
		{Name: "n4", FlagOn: flagOn, DropEvery: 120, HeartbeatDrops: []int{minutes - 300, minutes - 200, minutes - 200, minutes - 5}},
		// n5 drops far more replication messages than the baselines.
		{Name: "n5", FlagOn: flagOn, DropEvery: 20},
	}
	hist := filepath.Join(t.TempDir(), "history.om")
	if err := promtest.WriteHistory(hist, start, time.Minute, minutes, rs); err != nil {
		t.Fatal(err)
	}

	prom := promtest.Start(t, promtest.Options{Backfill: hist})
	pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	localDir := t.TempDir()
	promtest.Backfill(t, hist, localDir)
	db, err := tsdb.Open(localDir, nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	eq := query.NewEngine(db, nil)
	t.Cleanup(func() { _ = eq.Close() })

	window := gates.Window{Start: end.Add(-24 * time.Hour), End: end}
	tests := []struct {
		canary     string
		want       gates.Verdict
		wantGate   string
		wantReason string
	}{
		{"n2", gates.Pass, "", "all 9 gates pass over 24h"},
		{"n4", gates.Fail, "heartbeat_drops", "canary n4: 4 heartbeat-lane drops in 24h, limit 0"},
		{"n5", gates.Fail, "replication_drop_ratio", "canary n5: replication/other-lane drop ratio 4.762% over 24h"},
	}
	for _, tt := range tests {
		t.Run(tt.canary, func(t *testing.T) {
			req := gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets(tt.canary), Baselines: replicaTargets("n1", "n3"), Window: window}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			fromProm, err := gates.Evaluate(ctx, pq, targets.Lanectl().Gates(), req)
			if err != nil {
				t.Fatalf("Evaluate via Prometheus: %v", err)
			}
			fromEngine, err := gates.Evaluate(ctx, eq, targets.Lanectl().Gates(), req)
			if err != nil {
				t.Fatalf("Evaluate via embedded engine: %v", err)
			}
			if fromProm.Verdict != tt.want {
				t.Errorf("verdict: got %s (%s), want %s", fromProm.Verdict, fromProm.Reason, tt.want)
			}
			if !strings.Contains(fromProm.Reason, tt.wantReason) {
				t.Errorf("reason: got %q, want it to contain %q", fromProm.Reason, tt.wantReason)
			}
			if tt.wantGate != "" && !strings.HasPrefix(fromProm.Reason, tt.wantGate+":") {
				t.Errorf("reason: got %q, want the %s gate to be the cause", fromProm.Reason, tt.wantGate)
			}
			for _, g := range fromProm.Gates {
				t.Logf("%-22s %-12s %s", g.Name, g.Verdict, g.Reason)
			}
			compareResults(t, fromProm, fromEngine)
		})
	}
}

// compareResults requires two backends to agree on every verdict and value.
func compareResults(t *testing.T, a, b gates.Result) {
	t.Helper()
	if a.Verdict != b.Verdict {
		t.Errorf("verdict: prometheus %s, engine %s", a.Verdict, b.Verdict)
	}
	if len(a.Gates) != len(b.Gates) {
		t.Fatalf("gates: prometheus %d, engine %d", len(a.Gates), len(b.Gates))
	}
	for i := range a.Gates {
		ga, gb := a.Gates[i], b.Gates[i]
		if ga.Verdict != gb.Verdict || ga.Reason != gb.Reason {
			t.Errorf("gate %s: prometheus %s (%s), engine %s (%s)", ga.Name, ga.Verdict, ga.Reason, gb.Verdict, gb.Reason)
		}
		for j := range ga.Values {
			va, vb := ga.Values[j], gb.Values[j]
			if va.Missing != vb.Missing || !closeEnough(va.Value, vb.Value) {
				t.Errorf("gate %s replica %s: prometheus %v (missing %v), engine %v (missing %v)", ga.Name, va.Replica, va.Value, va.Missing, vb.Value, vb.Missing)
			}
		}
	}
}

func closeEnough(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
