package gates_test

import (
	"context"
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

// TestVictoriaMetricsAgreesWithPrometheus loads the same 24 h history into
// a real Prometheus and a real VictoriaMetrics and requires every gate to
// have the same verdict, reason and per-replica value on both.
// Both are read through query.Remote, which finds VictoriaMetrics behind its
// URL and evaluates there with Prometheus' engine over the raw samples; the gates as VictoriaMetrics itself evaluates
// them (MetricsQL) are logged beside, to show why.
func TestVictoriaMetricsAgreesWithPrometheus(t *testing.T) {
	const minutes = 26 * 60
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
	start := end.Add(-time.Duration(minutes) * time.Minute).Add(-23 * time.Second)
	flagOn := minutes - 24*60 - 10
	rs := []promtest.ReplicaHistory{
		{Name: "n1", FlagOn: -1, DropEvery: 100},
		{Name: "n2", FlagOn: flagOn, DropEvery: 120},
		{Name: "n3", FlagOn: -1, DropEvery: 100},
		{Name: "n4", FlagOn: flagOn, DropEvery: 120, HeartbeatDrops: []int{minutes - 300, minutes - 200, minutes - 200, minutes - 5}},
		{Name: "n5", FlagOn: flagOn, DropEvery: 20},
	}
	hist := filepath.Join(t.TempDir(), "history.om")
	if err := promtest.WriteHistory(hist, start, time.Minute, minutes, rs); err != nil {
		t.Fatal(err)
	}
	prom := promtest.Start(t, promtest.Options{Backfill: hist})
	vm := vmtest.Start(t)
	vm.ImportOpenMetrics(t, hist)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pq, err := query.NewRemote(prom.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	vq, err := query.NewRemote(vm.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = vq.Close() })
	native, err := query.NewPrometheus(vm.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}

	window := gates.Window{Start: end.Add(-24 * time.Hour), End: end}
	for _, canary := range []string{"n2", "n4", "n5"} {
		t.Run(canary, func(t *testing.T) {
			req := gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets(canary), Baselines: replicaTargets("n1", "n3"), Window: window}
			fromProm, err := gates.Evaluate(ctx, pq, targets.Lanectl().Gates(), req)
			if err != nil {
				t.Fatalf("Evaluate via Prometheus: %v", err)
			}
			fromVM, err := gates.Evaluate(ctx, vq, targets.Lanectl().Gates(), req)
			if err != nil {
				t.Fatalf("Evaluate via VictoriaMetrics: %v", err)
			}
			if fromProm.Verdict == gates.Inconclusive {
				t.Fatalf("the history should decide the soak: %s", fromProm.Reason)
			}
			compareResults(t, fromProm, fromVM)
			if pq.Backend() != query.BackendPrometheus || vq.Backend() != query.BackendVictoriaMetrics {
				t.Errorf("backends: got %q and %q, want prometheus and victoriametrics", pq.Backend(), vq.Backend())
			}
			if fromMetricsQL, err := gates.Evaluate(ctx, native, targets.Lanectl().Gates(), req); err == nil {
				for i, g := range fromMetricsQL.Gates {
					if g.Reason != fromProm.Gates[i].Reason {
						t.Logf("MetricsQL differs on %s: %s (Prometheus: %s)", g.Name, g.Reason, fromProm.Gates[i].Reason)
					}
				}
			} else {
				t.Logf("MetricsQL could not evaluate the gates: %v", err)
			}
		})
	}
}
