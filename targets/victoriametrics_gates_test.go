package targets_test

import (
	"context"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/query/vmtest"
	"github.com/lanectl/lanectl/targets"
)

// TestVictoriaMetricsGatesEqualPrometheus feeds one 24 h history to a real
// Prometheus and a real VictoriaMetrics and requires every gate of both
// built-in targets to have the same verdict, reason and per-replica value
// on both (to 1e-9 relative), for a healthy canary and for one that
// restarts halfway through its soak. VictoriaMetrics is read through
// query.Remote, as lanectl reads it.
func TestVictoriaMetricsGatesEqualPrometheus(t *testing.T) {
	start, window := historyTimes()
	flagOn := historyMinutes - 24*60 - 10
	crash := historyMinutes - 12*60
	type history struct {
		name   string
		target targets.Target
		write  func(path string) error
		ext    map[string][]gates.ExternalValue
	}
	var histories []history
	for _, c := range []struct {
		name  string
		crash int
	}{{"healthy", -1}, {"restart 12h in", crash}} {
		crashes := []int(nil)
		if c.crash >= 0 {
			crashes = []int{c.crash}
		}
		histories = append(histories,
			history{name: "lanectl/" + c.name, target: targets.Lanectl(), write: func(path string) error {
				return promtest.WriteHistory(path, start, time.Minute, historyMinutes, []promtest.ReplicaHistory{
					{Name: "n1", FlagOn: -1, DropEvery: 100},
					{Name: "n2", FlagOn: flagOn, DropEvery: 120, Crashes: crashes},
					{Name: "n3", FlagOn: -1, DropEvery: 100},
				})
			}},
			history{name: "elastickv/" + c.name, target: targets.Elastickv(), ext: flagValues("n2", "n1", "n3"), write: func(path string) error {
				return writeElastickvHistory(path, start, time.Minute, historyMinutes, []elastickvReplica{
					{name: "n1", restart: -1, crash: -1, dropEvery: 1000},
					{name: "n2", restart: flagOn, crash: c.crash, dropEvery: 1200},
					{name: "n3", restart: -1, crash: -1, dropEvery: 1000},
				})
			}},
		)
	}
	for _, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.om")
			if err := h.write(path); err != nil {
				t.Fatal(err)
			}
			prom := promtest.Start(t, promtest.Options{Backfill: path})
			vm := vmtest.Start(t)
			vm.ImportOpenMetrics(t, path)
			pq, err := query.NewRemote(prom.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			vq, err := query.NewRemote(vm.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = vq.Close() })
			req := gates.Request{
				PresenceMetric: h.target.PresenceMetric,
				Canaries:       nodeTargets("n2"),
				Baselines:      nodeTargets("n1", "n3"),
				Window:         window,
				External:       h.ext,
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			fromProm, err := gates.Evaluate(ctx, pq, h.target.Gates(), req)
			if err != nil {
				t.Fatalf("Prometheus: %v", err)
			}
			fromVM, err := gates.Evaluate(ctx, vq, h.target.Gates(), req)
			if err != nil {
				t.Fatalf("VictoriaMetrics: %v", err)
			}
			if vq.Backend() != query.BackendVictoriaMetrics {
				t.Fatalf("backend behind %s: got %q, want victoriametrics", vm.URL, vq.Backend())
			}
			if fromProm.Verdict == gates.Inconclusive {
				t.Fatalf("the history should decide the soak: %s", fromProm.Reason)
			}
			sameResult(t, fromProm, fromVM)
		})
	}
}

// sameResult requires two backends to agree on every verdict, reason and
// value.
func sameResult(t *testing.T, prom, vm gates.Result) {
	t.Helper()
	if prom.Verdict != vm.Verdict || prom.Reason != vm.Reason {
		t.Errorf("verdict: Prometheus %s (%s), VictoriaMetrics %s (%s)", prom.Verdict, prom.Reason, vm.Verdict, vm.Reason)
	}
	if len(prom.Gates) != len(vm.Gates) {
		t.Fatalf("gates: Prometheus %d, VictoriaMetrics %d", len(prom.Gates), len(vm.Gates))
	}
	for i, gp := range prom.Gates {
		gv := vm.Gates[i]
		if gp.Verdict != gv.Verdict || gp.Reason != gv.Reason {
			t.Errorf("gate %s: Prometheus %s (%s), VictoriaMetrics %s (%s)", gp.Name, gp.Verdict, gp.Reason, gv.Verdict, gv.Reason)
		}
		for j, vp := range gp.Values {
			vv := gv.Values[j]
			if vp.Missing != vv.Missing || !within(vp.Value, vv.Value) {
				t.Errorf("gate %s replica %s: Prometheus %v (missing %v), VictoriaMetrics %v (missing %v)", gp.Name, vp.Replica, vp.Value, vp.Missing, vv.Value, vv.Missing)
			}
		}
	}
}

func within(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}
