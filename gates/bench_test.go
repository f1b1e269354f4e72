package gates

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
)

// countingQuerier counts queries on their way to a real backend.
type countingQuerier struct {
	Querier
	n atomic.Int64
}

func (c *countingQuerier) Query(ctx context.Context, expr string, at time.Time) (query.Vector, query.Warnings, error) {
	c.n.Add(1)
	return c.Querier.Query(ctx, expr, at)
}

// BenchmarkDefaultGates100Replicas evaluates the default gates over a 24h
// window for one canary and 99 baselines, backfilled into a real
// Prometheus, two ways in the same run: one query per gate for all replicas
// (what Evaluate does), and one query per gate per replica. It reports
// queries/op for each and logs the wall-time ratio.
func BenchmarkDefaultGates100Replicas(b *testing.B) {
	const replicas = 100
	const steps = 25 * 60
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
	start := end.Add(-steps * time.Minute).Add(-23 * time.Second)
	var hist []promtest.ReplicaHistory
	req := Request{Window: Window{Start: end.Add(-24 * time.Hour), End: end}}
	for i := range replicas {
		name := fmt.Sprintf("r%03d", i)
		h := promtest.ReplicaHistory{Name: name, FlagOn: -1, DropEvery: 100}
		t := Target{Name: name, Selector: fmt.Sprintf("node_id=%q", name)}
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

	perOp := map[layout]time.Duration{}
	queries := map[layout]float64{}
	for _, tc := range []struct {
		name string
		l    layout
	}{{"grouped", layoutGrouped}, {"per-replica", layoutPerReplica}} {
		b.Run(tc.name, func(b *testing.B) {
			q := &countingQuerier{Querier: pq}
			ctx := context.Background()
			var res Result
			for b.Loop() {
				res, err = evaluate(ctx, q, DefaultSet(), req, tc.l)
				if err != nil {
					b.Fatal(err)
				}
			}
			if res.Verdict != Pass {
				b.Fatalf("verdict %s (%s), want pass", res.Verdict, res.Reason)
			}
			queries[tc.l] = float64(q.n.Load()) / float64(b.N)
			perOp[tc.l] = b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(queries[tc.l], "queries/op")
		})
	}
	if g, p := perOp[layoutGrouped], perOp[layoutPerReplica]; g > 0 && p > 0 {
		b.Logf("grouped: %.0f queries, %v per evaluation; per-replica: %.0f queries, %v per evaluation; per-replica is %.1fx slower",
			queries[layoutGrouped], g.Round(time.Millisecond), queries[layoutPerReplica], p.Round(time.Millisecond), float64(p)/float64(g))
	}
}
