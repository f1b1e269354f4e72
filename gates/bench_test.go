package gates_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// BenchmarkDefaultGates100Replicas evaluates the default gates over a 24h
// window for one canary and 99 baselines, backfilled into a real
// Prometheus, two ways in the same run: one query per gate for all replicas
// (what Evaluate does), and one query per gate per replica. It reports
// queries/op for each and logs the wall-time ratio.
func BenchmarkDefaultGates100Replicas(b *testing.B) {
	const replicas = 100
	lanectl := targets.Lanectl()
	const steps = 25 * 60
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
	start := end.Add(-steps * time.Minute).Add(-23 * time.Second)
	var hist []promtest.ReplicaHistory
	req := gates.Request{PresenceMetric: lanectl.PresenceMetric, Window: gates.Window{Start: end.Add(-24 * time.Hour), End: end}}
	for i := range replicas {
		name := fmt.Sprintf("r%03d", i)
		h := promtest.ReplicaHistory{Name: name, FlagOn: -1, DropEvery: 100}
		t := gates.Target{Name: name, Selector: fmt.Sprintf("node_id=%q", name)}
		if i == 0 {
			h.FlagOn = steps - 24*60 - 10
			req.Canaries = append(req.Canaries, t)
		} else {
			req.Baselines = append(req.Baselines, t)
		}
		hist = append(hist, h)
	}
	path := filepath.Join(b.TempDir(), "history.om")
	t0 := time.Now()
	if err := promtest.WriteHistory(path, start, time.Minute, steps, hist); err != nil {
		b.Fatal(err)
	}
	prom := promtest.Start(b, promtest.Options{Backfill: path})
	b.Logf("history: %d replicas x %d steps written and backfilled in %v", replicas, steps+1, time.Since(t0).Round(time.Millisecond))
	pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		b.Fatal(err)
	}

	perOp := map[gates.Layout]time.Duration{}
	queries := map[gates.Layout]float64{}
	for _, tc := range []struct {
		name string
		l    gates.Layout
	}{{"grouped", gates.LayoutGrouped}, {"per-replica", gates.LayoutPerReplica}} {
		b.Run(tc.name, func(b *testing.B) {
			q := &countingQuerier{Querier: pq}
			ctx := context.Background()
			var res gates.Result
			for b.Loop() {
				res, err = gates.EvaluateLayout(ctx, q, lanectl.Gates(), req, tc.l)
				if err != nil {
					b.Fatal(err)
				}
			}
			if res.Verdict != gates.Pass {
				b.Fatalf("verdict %s (%s), want pass", res.Verdict, res.Reason)
			}
			queries[tc.l] = float64(len(q.queries)) / float64(b.N)
			perOp[tc.l] = b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(queries[tc.l], "queries/op")
		})
	}
	if g, p := perOp[gates.LayoutGrouped], perOp[gates.LayoutPerReplica]; g > 0 && p > 0 {
		b.Logf("grouped: %.0f queries, %v per evaluation; per-replica: %.0f queries, %v per evaluation; per-replica is %.1fx slower",
			queries[gates.LayoutGrouped], g.Round(time.Millisecond), queries[gates.LayoutPerReplica], p.Round(time.Millisecond), float64(p)/float64(g))
	}
}
