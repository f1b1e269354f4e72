package dashboards

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"go.uber.org/goleak"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startCluster starts three real replicas: n1 on the four-lane layout and
// n2, n3 legacy (a rollout's first stage), n3 without fsync (a replica not in
// the expected sync mode). It elects a leader, writes through it and sends
// a snapshot, so every lane has carried traffic.
func startCluster(t *testing.T) *nodetest.Cluster {
	t.Helper()
	c := nodetest.StartCluster(t, 3, nodetest.Options{
		Env: []nodetest.Env{nodetest.FourLane(), nodetest.Legacy(), nodetest.Legacy().With(lanes.SyncModeEnv, "nosync")},
	})
	leader := c.WaitLeader(30 * time.Second)
	var last uint64
	for i := range 20 {
		idx, err := c.Put(leader, "key"+string(rune('a'+i)), []byte("value"))
		if err != nil {
			t.Fatalf("put through %s: %v", c.Name(leader), err)
		}
		last = idx
	}
	for i := range c.N() {
		c.WaitApplied(i, last, 30*time.Second)
	}
	follower := (leader + 1) % c.N()
	if _, err := c.ForceSnapshot(leader, c.Name(follower)); err != nil {
		t.Fatalf("force snapshot %s -> %s: %v", c.Name(leader), c.Name(follower), err)
	}
	return c
}

// exportedMetrics gathers every replica's real registry.
func exportedMetrics(t *testing.T, c *nodetest.Cluster) metricSet {
	t.Helper()
	s := metricSet{}
	for i := range c.N() {
		r := c.Replica(i)
		if r == nil {
			t.Fatalf("replica %s is not running", c.Name(i))
		}
		mfs, err := r.Registry().Gather()
		if err != nil {
			t.Fatalf("gather %s: %v", c.Name(i), err)
		}
		for _, mf := range mfs {
			typ := strings.ToLower(mf.GetType().String())
			s.addFamily(mf.GetName(), typ)
		}
	}
	return s
}

// TestMetricNamesExported is the check that makes a panel reading a
// metric nobody exports fail the build: every metric any dashboard query,
// variable or rule reads is registered by a real replica (gathered from its
// registry), recorded by a rule in lanes.rules.yml, or Prometheus' own up
// (or a process_* metric).
func TestMetricNamesExported(t *testing.T) {
	c := startCluster(t)
	known := exportedMetrics(t, c)
	for _, want := range []string{
		targets.LanectlDropped,
		targets.LanectlQueueWait + "_bucket",
		targets.LanectlSyncMode,
		targets.LanectlLastContact,
	} {
		if !known[want] {
			t.Fatalf("replica registry lacks %s (got %v): the gathering is broken, not the dashboards", want, known.sorted())
		}
	}
	for n := range recordedNames(t, lanectlSet()) {
		known[n] = true
	}
	vars := staticVars()
	for _, q := range allQueries(t, lanectlSet()) {
		if err := known.check(q, vars, true); err != nil {
			t.Error(err)
		}
	}
}

// liveScrapeInterval is the live test's scrape and rule evaluation
// interval.
const liveScrapeInterval = time.Second

// TestQueriesReturnDataLive runs every dashboard query and every recording
// rule against a real Prometheus scraping a real three-replica cluster
// (with lanes.rules.yml loaded), with the Grafana variables resolved the way
// Grafana resolves them, and requires each to return at least one series: a
// panel that would show "No data" on a healthy cluster fails here. Then it
// checks what the alert expressions select on that cluster, restarts a
// replica with the flag on as a rollout step does, and requires the
// dashboards' annotations to mark it.
func TestQueriesReturnDataLive(t *testing.T) {
	set := lanectlSet()
	c := startCluster(t)
	var targets []string
	for _, u := range c.URLs() {
		targets = append(targets, u+"/metrics")
	}
	prom := promtest.Start(t, promtest.Options{
		Targets:        targets,
		ScrapeInterval: liveScrapeInterval,
		RuleFiles:      []string{writeRules(t, set)},
	})
	client, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)

	// Write traffic for the whole test, so rates have something to show.
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// A put through a replica that is not the leader may fail
				// during an election; the next one goes elsewhere.
				_, _ = c.Put(i%c.N(), fmt.Sprintf("live-%d", i%50), []byte("value"))
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()

	checks := setChecks(t, set)
	builtins := liveBuiltins()
	var steady, events []liveCheck
	for _, ck := range checks {
		if ck.event {
			events = append(events, ck)
		} else {
			steady = append(steady, ck)
		}
	}
	pollLiveChecks(t, api, prom, steady, builtins, 90*time.Second)

	// The alert expressions read the real series correctly: on this
	// cluster a mixed flag state and n3's nosync mode show up, and nothing
	// is dropping heartbeats or electing leaders in a storm. (Whether they
	// fire after their "for" is promtool's part, in TestPromtoolTestRules.)
	wantAlerting := map[string][]string{
		"LanectlFlagStateDiverged":    {`{job="lanectl"}`},
		"LanectlSyncModeUnexpected":   {`{instance="` + hostOf(t, c.URL(2)) + `", job="lanectl", mode="sync", node_id="n3"}`},
		"LanectlHeartbeatLaneDrops":   nil,
		"LanectlLeaderChangesSpiking": nil,
	}
	checkAlertExprs(t, api, rules(t, set), wantAlerting)

	// A rollout step: n2 restarts with the flag on. The annotations mark it.
	c.Restart(1, nodetest.FourLane())
	c.WaitLeader(30 * time.Second)
	pollLiveChecks(t, api, prom, events, builtins, 60*time.Second)
}

// setChecks are the live checks of a set: every dashboard query and
// annotation, and every recording rule's expression and recorded series.
func setChecks(t *testing.T, set Set) []liveCheck {
	t.Helper()
	var checks []liveCheck
	for _, file := range dashboardFiles(t, set) {
		d, err := decodeDashboard(file)
		if err != nil {
			t.Fatal(err)
		}
		checks = append(checks, dashboardChecks(t, file, d)...)
	}
	for _, g := range rules(t, set).Groups {
		for _, r := range g.Rules {
			if r.Record == "" {
				continue
			}
			where := fmt.Sprintf("%s record %s", set.RulesFile, r.Record)
			// The rule's expression, and the series Prometheus recorded from
			// it (which proves the file loads and evaluates).
			checks = append(checks,
				liveCheck{where: where + " expr", expr: r.Expr},
				liveCheck{where: where + " recorded", expr: r.Record})
		}
	}
	return checks
}

// liveBuiltins are Grafana's built-in variables for the live tests:
// $__rate_interval as Grafana computes it for a 1s scrape interval (four
// scrapes), plus one for slack.
func liveBuiltins() map[string]string {
	return map[string]string{
		"__rate_interval": model.Duration(5 * liveScrapeInterval).String(),
		"__interval":      model.Duration(liveScrapeInterval).String(),
		"__range":         "30s",
		"__range_s":       "30",
	}
}

// checkAlertExprs runs the expression of each alert named in want and
// compares the label sets it selects (without __name__), sorted.
func checkAlertExprs(t *testing.T, api promv1.API, groups *rulefmt.RuleGroups, want map[string][]string) {
	t.Helper()
	now := time.Now()
	seen := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			w, ok := want[r.Alert]
			if !ok {
				continue
			}
			seen[r.Alert] = true
			got, err := selected(t.Context(), api, r.Expr, now)
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
				continue
			}
			if !slices.Equal(got, w) {
				t.Errorf("alert %s: expression returned %v, want %v", r.Alert, got, w)
			}
		}
	}
	for a := range want {
		if !seen[a] {
			t.Errorf("alert %s: not in the rules", a)
		}
	}
}

// selected runs an instant query and returns the label sets of its
// result (without __name__), sorted; a warning is an error.
func selected(ctx context.Context, api promv1.API, expr string, at time.Time) ([]string, error) {
	v, warnings, _, err := api.Query(ctx, expr, at)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("query %q: warnings %v", expr, warnings)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %q: got a %s, want an instant vector", expr, v.Type())
	}
	var got []string
	for _, s := range vec {
		m := s.Metric.Clone()
		delete(m, model.MetricNameLabel)
		got = append(got, m.String())
	}
	slices.Sort(got)
	return got, nil
}

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// liveCheck is one query to run live. Variables, when set, are the
// dashboard's query variables to resolve first, in dashboard order.
type liveCheck struct {
	where     string
	expr      string
	instant   bool
	variables []dashboard.VariableModel
	// event marks an annotation query, which has data only after a
	// replica restarted or changed its flag.
	event bool
	// allowEmpty accepts an empty result: the check is only that the
	// query evaluates without error or warning.
	allowEmpty bool
}

func dashboardChecks(t *testing.T, file string, d *dashboard.Dashboard) []liveCheck {
	t.Helper()
	var vars []dashboard.VariableModel
	for _, v := range d.Templating.List {
		if v.Type == dashboard.VariableTypeQuery {
			vars = append(vars, v)
		}
	}
	var checks []liveCheck
	ps, _ := panels(d)
	for _, p := range ps {
		for _, tg := range p.Targets {
			pq := tg.(*prometheus.Dataquery)
			checks = append(checks, liveCheck{
				where:     fmt.Sprintf("%s %s", panelName(file, p), deref(pq.RefId)),
				expr:      pq.Expr,
				instant:   pq.Instant != nil && *pq.Instant,
				variables: vars,
			})
		}
	}
	for _, a := range d.Annotations.List {
		checks = append(checks, liveCheck{
			where:     fmt.Sprintf("%s annotation %q", file, a.Name),
			expr:      *a.Expr,
			variables: vars,
			event:     true,
		})
	}
	return checks
}

// pollLiveChecks runs checks until all return data, failing the test with
// what still returned nothing after timeout.
func pollLiveChecks(t *testing.T, api promv1.API, prom *promtest.Server, checks []liveCheck, builtins map[string]string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		failures := runLiveChecks(t, api, checks, builtins)
		if len(failures) == 0 {
			t.Logf("%d queries returned data", len(checks))
			return
		}
		if time.Now().After(deadline) {
			for _, f := range failures {
				t.Error(f)
			}
			log, _ := os.ReadFile(filepath.Join(prom.Dir, "prometheus.log"))
			t.Fatalf("%d of %d queries returned no series after %v against %s; Prometheus log:\n%s", len(failures), len(checks), timeout, prom.URL, log)
		}
		time.Sleep(liveScrapeInterval)
	}
}

// runLiveChecks returns a description of every check that returned no
// series (or failed).
func runLiveChecks(t *testing.T, api promv1.API, checks []liveCheck, builtins map[string]string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	now := time.Now()
	var failures []string
	for _, c := range checks {
		vars, err := resolveVariables(ctx, api, c.variables, builtins, now)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", c.where, err))
			continue
		}
		expr, err := substitute(c.expr, vars)
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: %v", c.where, err))
			continue
		}
		var v model.Value
		var warnings promv1.Warnings
		if c.instant {
			v, warnings, _, err = api.Query(ctx, expr, now)
		} else {
			v, warnings, _, err = api.QueryRange(ctx, expr, promv1.Range{Start: now.Add(-30 * time.Second), End: now, Step: time.Second})
		}
		if err != nil {
			failures = append(failures, fmt.Sprintf("%s: query %q: %v", c.where, expr, err))
			continue
		}
		if len(warnings) > 0 {
			failures = append(failures, fmt.Sprintf("%s: query %q: warnings %v", c.where, expr, warnings))
			continue
		}
		if seriesCount(v) == 0 && !c.allowEmpty {
			failures = append(failures, fmt.Sprintf("%s: %q returned no series", c.where, expr))
		}
	}
	return failures
}

func seriesCount(v model.Value) int {
	switch v := v.(type) {
	case model.Vector:
		return len(v)
	case model.Matrix:
		return len(v)
	case *model.Scalar:
		return 1
	}
	return 0
}

// resolveVariables resolves label_values variables in order, each seeing
// the ones before it, as Grafana does: a multi-value or "All" variable
// becomes the regex (v1|v2|...) of every value, a single-value variable
// its first value.
func resolveVariables(ctx context.Context, api promv1.API, vars []dashboard.VariableModel, builtins map[string]string, now time.Time) (map[string]string, error) {
	out := map[string]string{}
	for k, v := range builtins {
		out[k] = v
	}
	for _, v := range vars {
		sel, label, err := labelValuesSelector(*v.Query.String)
		if err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		if sel, err = substitute(sel, out); err != nil {
			return nil, fmt.Errorf("variable %s: %w", v.Name, err)
		}
		values, _, _, err := api.LabelValues(ctx, label, []string{sel}, now.Add(-time.Minute), now)
		if err != nil {
			return nil, fmt.Errorf("variable %s: label values of %s for %s: %w", v.Name, label, sel, err)
		}
		if len(values) == 0 {
			return nil, fmt.Errorf("variable %s: label_values(%s, %s) has no values", v.Name, sel, label)
		}
		if v.Multi != nil && *v.Multi || v.IncludeAll != nil && *v.IncludeAll {
			parts := make([]string, len(values))
			for i, lv := range values {
				parts[i] = regexp.QuoteMeta(string(lv))
			}
			out[v.Name] = "(" + strings.Join(parts, "|") + ")"
		} else {
			out[v.Name] = string(values[0])
		}
	}
	return out, nil
}
