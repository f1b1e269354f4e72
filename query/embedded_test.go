package query_test

import (
	"context"
	"fmt"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
)

// exporter serves a real client_golang registry over HTTP, shaped like a
// replica's /metrics.
type exporter struct {
	srv     *httptest.Server
	reg     *prometheus.Registry
	dropped *prometheus.CounterVec
}

func newExporter(t *testing.T, node string) *exporter {
	t.Helper()
	reg := prometheus.NewRegistry()
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": node}, reg)
	e := &exporter{reg: reg}
	e.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elastickv_raft_dispatch_dropped_total", Help: "drops"}, []string{"lane", "peer"})
	enabled := prometheus.NewGauge(prometheus.GaugeOpts{Name: "elastickv_raft_dispatcher_lanes_enabled", Help: "flag"})
	enabled.Set(1)
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "elastickv_raft_dispatch_queue_wait_seconds", Help: "wait", Buckets: []float64{0.001, 0.01, 0.1}}, []string{"lane"})
	wait.WithLabelValues("heartbeat").Observe(0.005)
	e.dropped.WithLabelValues("replication", "2").Add(4)
	wrapped.MustRegister(e.dropped, enabled, wait)
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *exporter) url() string { return e.srv.URL + "/metrics" }

// series lists the label sets an instant query returns, sorted, with the
// instance label dropped (the two stores scrape the same address).
func series(t *testing.T, q interface {
	Query(context.Context, string, time.Time) (query.Vector, query.Warnings, error)
}, expr string) []string {
	t.Helper()
	vec, _, err := q.Query(context.Background(), expr, time.Now())
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	var out []string
	for _, s := range vec {
		keys := slices.Sorted(maps.Keys(s.Labels))
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s ", k, s.Labels[k])
		}
		fmt.Fprintf(&b, "= %g", s.Value)
		out = append(out, b.String())
	}
	slices.Sort(out)
	return out
}

// TestEmbeddedScrapesLikePrometheus scrapes the same exporters with a real
// Prometheus and with the embedded store and compares what each stored.
func TestEmbeddedScrapesLikePrometheus(t *testing.T) {
	e1, e2 := newExporter(t, "n1"), newExporter(t, "n2")
	targets := []string{e1.url(), e2.url()}
	prom := promtest.Start(t, promtest.Options{Targets: targets, ScrapeInterval: time.Second})
	pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	emb, err := query.NewEmbedded(ctx, targets, time.Second, query.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	// Wait until Prometheus has scraped both targets.
	promtest.Eventually(t, 30*time.Second, "Prometheus to scrape both targets", func() bool { return len(series(t, pq, `up == 1`)) == 2 })

	for _, expr := range []string{
		`up`,
		`elastickv_raft_dispatcher_lanes_enabled`,
		`elastickv_raft_dispatch_dropped_total`,
		`elastickv_raft_dispatch_queue_wait_seconds_bucket`,
		`elastickv_raft_dispatch_queue_wait_seconds_count`,
		`count by (__name__, job) ({node_id=~".+"})`,
	} {
		got, want := series(t, emb, expr), series(t, pq, expr)
		if !slices.Equal(got, want) {
			t.Errorf("%s:\nembedded   %q\nprometheus %q", expr, got, want)
		}
	}
}

// TestEmbeddedCountsCounterCreatedAfterStart checks that a counter whose
// first event happens after scraping began reads as an increase of one, not
// zero: the store records the zero it was created from.
func TestEmbeddedCountsCounterCreatedAfterStart(t *testing.T) {
	e := newExporter(t, "n2")
	emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, 100*time.Millisecond, query.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	start := time.Now()
	e.dropped.WithLabelValues("heartbeat", "3").Inc()
	expr := `increase(elastickv_raft_dispatch_dropped_total{lane="heartbeat"}[1m])`
	var got float64
	promtest.Eventually(t, 10*time.Second, "the heartbeat drop in the embedded store", func() bool {
		vec, _, err := emb.Query(context.Background(), expr, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(vec) == 1 {
			got = vec[0].Value
		}
		return got >= 1 && time.Since(start) > 500*time.Millisecond
	})
	if got < 1 {
		t.Errorf("%s: got %v, want >= 1", expr, got)
	}
}

func TestEmbeddedStalenessAndDownTargets(t *testing.T) {
	e := newExporter(t, "n2")
	emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, 100*time.Millisecond, query.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	if got := series(t, emb, `elastickv_raft_dispatcher_lanes_enabled`); len(got) != 1 {
		t.Fatalf("before: got %q, want one series", got)
	}
	e.srv.Close()
	// A target that stops answering is up == 0 and its series go stale at
	// once rather than lingering for the 5m lookback.
	promtest.Eventually(t, 10*time.Second, "the stopped target to be down and its series stale", func() bool {
		return len(series(t, emb, `up == 0`)) == 1 && len(series(t, emb, `elastickv_raft_dispatcher_lanes_enabled`)) == 0
	})
}

func TestNewEmbeddedRejectsBadTargets(t *testing.T) {
	tests := []struct {
		targets  []string
		interval time.Duration
		want     string
	}{
		{nil, time.Second, "no targets"},
		{[]string{"10.0.0.1:9101"}, time.Second, "want an http(s) URL"},
		{[]string{"http://127.0.0.1:1/metrics", "http://127.0.0.1:1/metrics"}, time.Second, "listed twice"},
		{[]string{"http://127.0.0.1:1/metrics"}, 0, "must be positive"},
	}
	for _, tt := range tests {
		_, err := query.NewEmbedded(context.Background(), tt.targets, tt.interval, query.EmbeddedOptions{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewEmbedded(%q, %v): got %v, want error containing %q", tt.targets, tt.interval, err, tt.want)
		}
	}
}
