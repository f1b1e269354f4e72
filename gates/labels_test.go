package gates_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// recordingQuerier keeps every query it is sent and answers none of them.
type recordingQuerier struct {
	mu      sync.Mutex
	queries []string
}

func (r *recordingQuerier) Query(_ context.Context, expr string, _ time.Time) (query.Vector, query.Warnings, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queries = append(r.queries, expr)
	return query.Vector{}, nil, nil
}

// renderedQueries evaluates the default gates for the targets and returns
// the query each gate sent.
func renderedQueries(t *testing.T, canaries, baselines []gates.Target) []string {
	t.Helper()
	q := &recordingQuerier{}
	now := time.Now()
	_, err := gates.Evaluate(context.Background(), q, targets.Lanectl().Gates(), gates.Request{
		PresenceMetric: targets.LanectlLanesEnabled,
		Canaries:       canaries, Baselines: baselines,
		Window: gates.Window{Start: now.Add(-time.Hour), End: now}, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return q.queries
}

// shape describes a query's AST with every label name replaced by the
// label's role: the replica label becomes R, so a query whose replica label
// is node_id and one whose replica label is anything else have the same
// shape exactly when the label name did not change the query's structure.
func shape(t *testing.T, expr, replicaLabel string) string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatalf("rendered query does not parse: %v\n%s", err, expr)
	}
	name := func(l string) string {
		if l == replicaLabel {
			return "R"
		}
		return l
	}
	names := func(ls []string) string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = name(l)
		}
		return strings.Join(out, ",")
	}
	var b strings.Builder
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			fmt.Fprintf(&b, "sel(%s", n.Name)
			for _, m := range n.LabelMatchers {
				if m.Name != "__name__" {
					fmt.Fprintf(&b, " %s%s", name(m.Name), m.Type)
				}
			}
			b.WriteString(") ")
		case *parser.AggregateExpr:
			fmt.Fprintf(&b, "%s by(%s) ", n.Op, names(n.Grouping))
		case *parser.BinaryExpr:
			fmt.Fprintf(&b, "%s ", n.Op)
			if n.VectorMatching != nil {
				fmt.Fprintf(&b, "on(%s) ", names(n.VectorMatching.MatchingLabels))
			}
		case *parser.Call:
			fmt.Fprintf(&b, "%s() ", n.Func.Name)
		case nil:
		default:
			fmt.Fprintf(&b, "%T ", n)
		}
		return nil
	})
	return b.String()
}

// TestLabelNameCannotChangeAQuery: a plan selector whose quoted label name
// is itself PromQL renders as one label name in every selector, by (...)
// and on (...) of every gate, in both layouts: the query has exactly the
// structure it has with node_id.
func TestLabelNameCannotChangeAQuery(t *testing.T) {
	const evil = `node_id="n1"} or vector(1) or foo{x`
	evilSel := func(v string) string { return fmt.Sprintf(`%q=%q`, evil, v) }
	plainSel := func(v string) string { return fmt.Sprintf(`node_id=%q`, v) }
	layouts := []struct {
		name     string
		replicas func(sel func(string) string) (canaries, baselines []gates.Target)
	}{
		{"grouped by the label", func(sel func(string) string) ([]gates.Target, []gates.Target) {
			return []gates.Target{{Name: "n2", Selector: sel("y")}}, []gates.Target{{Name: "n1", Selector: sel("z")}}
		}},
		{"joined per replica", func(sel func(string) string) ([]gates.Target, []gates.Target) {
			return []gates.Target{{Name: "n2", Selector: sel("y")}}, []gates.Target{{Name: "n1", Selector: `job="kv"`}}
		}},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			c, b := l.replicas(evilSel)
			got := renderedQueries(t, c, b)
			c, b = l.replicas(plainSel)
			want := renderedQueries(t, c, b)
			if len(got) != len(want) || len(got) != len(targets.Lanectl().Gates()) {
				t.Fatalf("got %d queries, want %d (one per gate)", len(got), len(want))
			}
			for i := range got {
				if strings.Contains(shape(t, got[i], evil), "vector()") {
					t.Errorf("query %d calls vector():\n%s", i, got[i])
				}
				if g, w := shape(t, got[i], evil), shape(t, want[i], "node_id"); g != w {
					t.Errorf("query %d: the label name changed its structure:\ngot  %s\nwant %s\nquery %s", i, g, w, got[i])
				}
			}
		})
	}
}

// TestDottedReplicaLabel: replicas named by an OpenTelemetry-style label,
// service.name, are selected, grouped and judged end to end by the
// embedded store scraping real client_golang exporters.
func TestDottedReplicaLabel(t *testing.T) {
	type replica struct {
		name    string
		contact float64
	}
	var urls []string
	for _, r := range []replica{{"n1", 0.05}, {"n2", 0.2}} {
		reg := prometheus.NewRegistry()
		w := prometheus.WrapRegistererWith(prometheus.Labels{"service.name": r.name}, reg)
		contact := prometheus.NewGauge(prometheus.GaugeOpts{Name: "elastickv_raft_last_contact_seconds", Help: "h"})
		contact.Set(r.contact)
		w.MustRegister(contact)
		srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL+"/metrics")
	}
	emb, err := query.NewEmbedded(context.Background(), urls, 100*time.Millisecond, query.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	lc, ok := targets.Lanectl().Gates().Lookup("last_contact")
	if !ok {
		t.Fatal("no last_contact gate in the default set")
	}
	start := time.Now()
	req := func(now time.Time) gates.Request {
		return gates.Request{
			PresenceMetric: targets.LanectlLanesEnabled,
			Canaries:       []gates.Target{{Name: "n2", Selector: `"service.name"="n2"`}},
			Baselines:      []gates.Target{{Name: "n1", Selector: `"service.name"="n1"`}},
			Window:         gates.Window{Start: start, End: start.Add(time.Hour)},
			Now:            now,
		}
	}
	var res gates.Result
	promtest.Eventually(t, 10*time.Second, "the embedded store to answer the gate", func() bool {
		res, err = gates.Evaluate(context.Background(), emb, gates.Set{lc}, req(time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Gates) == 1 && !res.Gates[0].Values[0].Missing && !res.Gates[0].Values[1].Missing
	})
	g := res.Gates[0]
	if !strings.Contains(g.Query, `by ("service.name")`) {
		t.Errorf("query: got %s, want it grouped by (\"service.name\")", g.Query)
	}
	got := map[string]float64{}
	for _, v := range g.Values {
		got[v.Replica] = v.Value
	}
	if got["n1"] != 0.05 || got["n2"] != 0.2 || g.Verdict != gates.Pass {
		t.Errorf("last_contact: got %s with values %v, want a pass with n1 0.05, n2 0.2", g.Verdict, got)
	}
}
