package dashboards

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
	"github.com/lanectl/lanectl/targets/elastickvtest"
)

// elastickvCaptures are every real scrape of stock elastickv that
// elastickvtest holds.
var elastickvCaptures = []string{
	"legacy-n1", "legacy-n2", "legacy-n3",
	"n2-fourlane-n1", "n2-fourlane-n2", "n2-fourlane-n3",
}

// capturedMetrics parses the real elastickv captures with Prometheus' own
// exposition parser and returns every metric name they hold, histograms
// as the _bucket, _sum and _count series Prometheus stores.
func capturedMetrics(t *testing.T) metricSet {
	t.Helper()
	s := metricSet{}
	for _, name := range elastickvCaptures {
		raw, err := elastickvtest.Capture(name)
		if err != nil {
			t.Fatal(err)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("parse capture %s: %v", name, err)
		}
		for _, mf := range mfs {
			s.addFamily(mf.GetName(), strings.ToLower(mf.GetType().String()))
		}
	}
	return s
}

// TestElastickvMetricNamesInCaptures holds the elastickv dashboards and
// rules to what stock elastickv really exports: every metric any of their
// queries, variables or rules reads (found with Prometheus' parser) is in
// the real captures, or is a series a rule of elastickv.rules.yml records,
// or Prometheus' own up. There is no process_* exemption: stock elastickv
// has no process collector.
func TestElastickvMetricNamesInCaptures(t *testing.T) {
	known := capturedMetrics(t)
	for _, want := range []string{targets.ElastickvDropped, targets.ElastickvLocalState, targets.ElastickvSendStream, targets.ElastickvSyncMode} {
		if !known[want] {
			t.Fatalf("captures lack %s (got %v): the parsing is broken, not the dashboards", want, known.sorted())
		}
	}
	for _, absent := range []string{targets.LanectlLanesEnabled, targets.LanectlSent, targets.LanectlProcessStartTime} {
		if known[absent] {
			t.Fatalf("captures hold %s, which stock elastickv does not export: the fixture is not stock elastickv", absent)
		}
	}
	set := elastickvSet()
	recorded := recordedNames(t, set)
	for n := range recorded {
		known[n] = true
	}
	vars := staticVars()
	qs := allQueries(t, set)
	if len(qs) < 30 {
		t.Fatalf("got %d queries, want every dashboard and rule query (at least 30)", len(qs))
	}
	read := map[string]bool{}
	for _, q := range qs {
		if err := known.check(q, vars, false); err != nil {
			t.Error(err)
		}
		expr, _ := substitute(q.expr, vars)
		e, err := newParser().ParseExpr(expr)
		if err != nil {
			continue // reported by check
		}
		names, _ := metricNames(e)
		for _, n := range names {
			read[n] = true
		}
	}
	// What the set is for: each of these is read by some query.
	for _, want := range []string{
		targets.ElastickvDropped, targets.ElastickvErrors, targets.ElastickvErrorsByCode,
		targets.ElastickvSendStream, targets.ElastickvStepQueueFull, targets.ElastickvLeaderChanges,
		targets.ElastickvLastContact, targets.ElastickvLocalState, targets.ElastickvLeaderIdentity,
		targets.ElastickvCommitIndex, targets.ElastickvAppliedIndex, targets.ElastickvFSMPending,
		targets.ElastickvSyncMode,
	} {
		if !read[want] {
			t.Errorf("no elastickv dashboard or rule reads %s", want)
		}
	}
}

// TestElastickvMetricCheckRejectsLanectlNames shows the capture check is
// not vacuous: the lanectl target's lanes gauge, sent counter and process
// metrics, which stock elastickv lacks, are refused.
func TestElastickvMetricCheckRejectsLanectlNames(t *testing.T) {
	known := capturedMetrics(t)
	for _, expr := range []string{
		targets.LanectlLanesEnabled + ` == 1`,
		fmt.Sprintf(`rate(%s[5m])`, targets.LanectlSent),
		fmt.Sprintf(`rate(%s_bucket[5m])`, targets.LanectlQueueWait),
		targets.LanectlProcessStartTime,
	} {
		if err := known.check(query{where: "test", expr: expr}, staticVars(), false); err == nil || !strings.Contains(err.Error(), "are not exported") {
			t.Errorf("check(%q): got %v, want it refused as not exported", expr, err)
		}
	}
}

// TestElastickvQueriesLive runs every query of the elastickv dashboard and
// every rule of elastickv.rules.yml against a real Prometheus scraping the
// real elastickv captures (n2 restarted four-lane, n3 leading every group),
// served as three nodes' /metrics, with the rules loaded. Every panel query
// and recording rule must return data, every annotation and alert
// expression must evaluate without error or warning, and the alert
// expressions must select what is true of that cluster: nothing on the
// healthy capture, every node when nosync is expected, and every group once
// the leader's metrics endpoint goes away.
func TestElastickvQueriesLive(t *testing.T) {
	set := elastickvSet()
	n1 := elastickvtest.Serve(t, "n2-fourlane-n1")
	n2 := elastickvtest.Serve(t, "n2-fourlane-n2")
	// n3 leads every group; its server is stopped below, so the test runs
	// it itself.
	body, err := elastickvtest.Capture("n2-fourlane-n3")
	if err != nil {
		t.Fatal(err)
	}
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(leader.Close)

	prom := promtest.Start(t, promtest.Options{
		Targets:        []string{n1 + "/metrics", n2 + "/metrics", leader.URL + "/metrics"},
		ScrapeInterval: liveScrapeInterval,
		RuleFiles:      []string{writeRules(t, set)},
	})
	client, err := promapi.NewClient(promapi.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	api := promv1.NewAPI(client)

	checks := setChecks(t, set)
	for i := range checks {
		// The captures never restart, so the restart annotation has
		// nothing to mark; it must still evaluate.
		checks[i].allowEmpty = checks[i].event
	}
	pollLiveChecks(t, api, prom, checks, liveBuiltins(), 90*time.Second)

	// A healthy cluster, every node in sync mode, counters that do not
	// move: no alert expression selects anything.
	checkAlertExprs(t, api, rules(t, set), map[string][]string{
		"ElastickvDispatchDrops":        nil,
		"ElastickvDispatchErrorsRising": nil,
		"ElastickvStepQueueFull":        nil,
		"ElastickvGroupWithoutLeader":   nil,
		"ElastickvSyncModeUnexpected":   nil,
		"ElastickvLeaderChangesSpiking": nil,
	})

	// The same cluster judged by rules rendered for nosync: every node is
	// in the wrong mode.
	nosync, err := set.Rules(RuleOptions{SyncMode: lanes.SyncModeNoSync, FlagDivergedFor: DefaultRuleOptions().FlagDivergedFor})
	if err != nil {
		t.Fatal(err)
	}
	var nosyncExpr string
	for _, g := range parseRuleGroups(t, set.RulesFile, nosync).Groups {
		for _, r := range g.Rules {
			if r.Alert == "ElastickvSyncModeUnexpected" {
				nosyncExpr = r.Expr
			}
		}
	}
	got, err := selected(t.Context(), api, nosyncExpr, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("nosync ElastickvSyncModeUnexpected: got %v, want n1, n2 and n3", got)
	}
	for _, node := range []string{"n1", "n2", "n3"} {
		n := 0
		for _, s := range got {
			if strings.Contains(s, fmt.Sprintf(`node_id=%q`, node)) && strings.Contains(s, `mode="nosync"`) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("nosync ElastickvSyncModeUnexpected: got %v, want one row of %s with mode nosync", got, node)
		}
	}

	// The leader's metrics endpoint goes away: its series go stale, the
	// other nodes follow, and no group has a node that reports leading it.
	leader.Close()
	want := []string{`{group="1", job="lanectl"}`, `{group="2", job="lanectl"}`, `{group="3", job="lanectl"}`}
	var groupExpr string
	for _, g := range rules(t, set).Groups {
		for _, r := range g.Rules {
			if r.Alert == "ElastickvGroupWithoutLeader" {
				groupExpr = r.Expr
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := selected(t.Context(), api, groupExpr, time.Now())
		if err == nil && slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ElastickvGroupWithoutLeader after the leader went away: got %v, %v, want %v", got, err, want)
		}
		time.Sleep(liveScrapeInterval)
	}
}
