package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// This file holds what the dashboard and rule tests share: loading the
// shipped files, Grafana variable substitution, and PromQL inspection.

// query is one PromQL expression found in a shipped file, with where it came
// from for error messages.
type query struct {
	where string // "lanes-overview.json panel 5 \"Heartbeat-lane drops\" A"
	expr  string // as written, with Grafana variables
	rule  bool   // from the rules file rather than a dashboard
}

// dashboardFiles lists a set's dashboards, each of which must be embedded.
func dashboardFiles(t *testing.T, s Set) []string {
	t.Helper()
	if len(s.Dashboards) == 0 {
		t.Fatalf("target %s: no dashboards", s.Target)
	}
	for _, n := range s.Dashboards {
		if !strings.HasSuffix(n, ".json") {
			t.Fatalf("target %s: dashboard %q is not a .json file", s.Target, n)
		}
		if _, err := File(n); err != nil {
			t.Fatal(err)
		}
	}
	return s.Dashboards
}

// decodeDashboard decodes a shipped dashboard strictly into the foundation
// SDK's types: an unknown field, a wrong type or a query the SDK cannot type
// as a Prometheus query is an error.
func decodeDashboard(name string) (*dashboard.Dashboard, error) {
	raw, err := File(name)
	if err != nil {
		return nil, err
	}
	return decodeDashboardJSON(name, raw)
}

func decodeDashboardJSON(name string, raw []byte) (*dashboard.Dashboard, error) {
	// The SDK types panel options and queries through a registry of
	// plugins; without it options and targets would decode as untyped maps
	// and nothing in them would be checked.
	plugins.RegisterDefaultPlugins()
	// The SDK's strict decoder (v0.0.22) reports every unknown field and
	// wrong type, but returns its error list as a non-nil error even when
	// the list is empty, and its callers then drop the panel, query or
	// options they were decoding. So it is used only to find errors (a
	// non-empty list), and the typed dashboard comes from the regular
	// decoder, which keeps everything.
	var strict dashboard.Dashboard
	var errs cog.BuildErrors
	if err := strict.UnmarshalJSONStrict(raw); err != nil && (!errors.As(err, &errs) || len(errs) > 0) {
		return nil, fmt.Errorf("%s: strict decode: %w", name, err)
	}
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: decode: %w", name, err)
	}
	return &d, nil
}

// panels flattens top-level panels and the panels inside rows.
func panels(d *dashboard.Dashboard) (ps []dashboard.Panel, rows []dashboard.RowPanel) {
	for _, p := range d.Panels {
		switch {
		case p.Panel != nil:
			ps = append(ps, *p.Panel)
		case p.RowPanel != nil:
			rows = append(rows, *p.RowPanel)
			ps = append(ps, p.RowPanel.Panels...)
		}
	}
	return ps, rows
}

func panelName(file string, p dashboard.Panel) string {
	id, title := uint32(0), ""
	if p.Id != nil {
		id = *p.Id
	}
	if p.Title != nil {
		title = *p.Title
	}
	return fmt.Sprintf("%s panel %d %q", file, id, title)
}

// dashboardQueries returns every target expression of a dashboard, every
// annotation query, and every label_values selector of its query variables
// (as a PromQL selector, so it is checked like any other query).
func dashboardQueries(file string, d *dashboard.Dashboard) ([]query, error) {
	var qs []query
	ps, _ := panels(d)
	for _, p := range ps {
		for i, t := range p.Targets {
			pq, ok := t.(*prometheus.Dataquery)
			if !ok {
				return nil, fmt.Errorf("%s target %d: got query type %T, want *prometheus.Dataquery", panelName(file, p), i, t)
			}
			ref := ""
			if pq.RefId != nil {
				ref = *pq.RefId
			}
			qs = append(qs, query{where: fmt.Sprintf("%s %s", panelName(file, p), ref), expr: pq.Expr})
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr == nil {
			return nil, fmt.Errorf("%s annotation %q: no expr", file, a.Name)
		}
		qs = append(qs, query{where: fmt.Sprintf("%s annotation %q", file, a.Name), expr: *a.Expr})
	}
	for _, v := range d.Templating.List {
		if v.Type != dashboard.VariableTypeQuery {
			continue
		}
		if v.Query == nil || v.Query.String == nil {
			return nil, fmt.Errorf("%s variable %s: no query string", file, v.Name)
		}
		sel, _, err := labelValuesSelector(*v.Query.String)
		if err != nil {
			return nil, fmt.Errorf("%s variable %s: %w", file, v.Name, err)
		}
		qs = append(qs, query{where: fmt.Sprintf("%s variable %s", file, v.Name), expr: sel})
	}
	return qs, nil
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// labelValuesSelector splits Grafana's label_values(selector, label).
func labelValuesSelector(q string) (selector, label string, err error) {
	m := labelValuesRE.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", "", fmt.Errorf("query %q: want label_values(<metric selector>, <label>)", q)
	}
	return m[1], m[2], nil
}

// grafanaVarRE matches $name, ${name}, ${name:format} and [[name]].
var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces Grafana variables in expr the way Grafana does before
// sending the query; an unknown variable is an error, so a typo in a
// variable name fails the tests instead of reaching Prometheus verbatim.
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVarRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVarRE.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			unknown = append(unknown, name)
			return m
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown Grafana variable(s) %v in %q", unknown, expr)
	}
	return out, nil
}

// rateIntervalSentinel stands in for $__rate_interval in static checks: an
// unusual range, so a hard-coded range is told apart from the variable.
const rateIntervalSentinel = 7*time.Minute + 13*time.Second

// staticVars are plausible values for every variable the dashboards use.
func staticVars() map[string]string {
	return map[string]string{
		"job":                "elastickv",
		"node_id":            "(n1|n2|n3)",
		"canary":             "n1",
		"baseline":           "(n2|n3)",
		"group":              "(1|2|3)",
		"datasource":         "prometheus",
		"__rate_interval":    model.Duration(rateIntervalSentinel).String(),
		"__interval":         "30s",
		"__range":            "6h",
		"__range_s":          "21600",
		"__rate_interval_ms": fmt.Sprint(rateIntervalSentinel.Milliseconds()),
	}
}

func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// metricNames returns the metric names an expression selects, sorted and
// unique. A selector without a fixed name (a regex on __name__) is an
// error: nobody could check what it reads.
func metricNames(e parser.Expr) ([]string, error) {
	seen := map[string]bool{}
	var err error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok || err != nil {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name == "" {
			err = fmt.Errorf("selector %s has no fixed metric name", vs)
			return nil
		}
		seen[name] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// rules parses a set's shipped rules file with Prometheus' own rule loader.
func rules(t *testing.T, s Set) *rulefmt.RuleGroups {
	t.Helper()
	raw, err := File(s.RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	return parseRuleGroups(t, s.RulesFile, raw)
}

func parseRuleGroups(t *testing.T, name string, raw []byte) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.Parse(raw, false, model.UTF8Validation, newParser(), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatalf("parse %s: %v", name, errs)
	}
	return groups
}

func ruleName(r rulefmt.Rule) string {
	if r.Alert != "" {
		return "alert " + r.Alert
	}
	return "record " + r.Record
}

// ruleQueries returns every rule expression of a set.
func ruleQueries(t *testing.T, s Set) []query {
	t.Helper()
	var qs []query
	for _, g := range rules(t, s).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: fmt.Sprintf("%s group %s %s", s.RulesFile, g.Name, ruleName(r)), expr: r.Expr, rule: true})
		}
	}
	return qs
}

// recordedNames are the series a set's recording rules produce.
func recordedNames(t *testing.T, s Set) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, g := range rules(t, s).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				names[r.Record] = true
			}
		}
	}
	return names
}

// allQueries returns the queries of every dashboard and rule of a set.
func allQueries(t *testing.T, s Set) []query {
	t.Helper()
	var qs []query
	for _, f := range dashboardFiles(t, s) {
		d, err := decodeDashboard(f)
		if err != nil {
			t.Fatal(err)
		}
		dq, err := dashboardQueries(f, d)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, dq...)
	}
	return append(qs, ruleQueries(t, s)...)
}

// prettyJSON is for failure messages.
func prettyJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
