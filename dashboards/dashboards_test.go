package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/lanectl/lanectl/dashboards/internal/gen"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/targets"
)

var update = flag.Bool("update", false, "rewrite the dashboard JSON from dashboards/internal/gen (same as go generate ./dashboards)")

// TestGeneratedFilesUpToDate fails when someone edited the JSON or the
// rules by hand, or changed the generator or the rules template without
// regenerating: the committed bytes must be exactly what they produce.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files, err := gen.Files()
	if err != nil {
		t.Fatalf("gen.Files: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("generator produced no dashboards")
	}
	for _, s := range Sets() {
		rules, err := s.Rules(DefaultRuleOptions())
		if err != nil {
			t.Fatalf("render the default %s: %v", s.RulesFile, err)
		}
		files = append(files, gen.File{Name: s.RulesFile, Data: rules})
	}
	shipped := map[string]bool{}
	for _, s := range Sets() {
		for _, n := range s.Names() {
			shipped[n] = true
		}
	}
	for _, f := range files {
		if !shipped[f.Name] {
			t.Errorf("%s is generated but no target's set ships it", f.Name)
		}
		delete(shipped, f.Name)
		if *update {
			if err := os.WriteFile(f.Name, f.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		committed, err := os.ReadFile(f.Name)
		if err != nil {
			t.Fatalf("%s is generated but not committed (run go generate ./dashboards): %v", f.Name, err)
		}
		if !bytes.Equal(committed, f.Data) {
			t.Errorf("%s differs from the generator's output (run go generate ./dashboards and commit both)", f.Name)
		}
		embedded, err := File(f.Name)
		if err != nil {
			t.Fatalf("%s is generated but not embedded: %v", f.Name, err)
		}
		if !bytes.Equal(embedded, f.Data) {
			t.Errorf("embedded %s differs from the generator's output", f.Name)
		}
	}
	for n := range shipped {
		t.Errorf("%s is shipped but not generated", n)
	}
}

// TestSets checks each built-in target has its set, and that an unknown
// target is refused with the targets package's error.
func TestSets(t *testing.T) {
	var got []string
	for _, s := range Sets() {
		got = append(got, s.Target)
	}
	if want := targets.Names(); !slices.Equal(got, want) {
		t.Errorf("got sets for %v, want one per target %v", got, want)
	}
	for _, name := range targets.Names() {
		s, err := ForTarget(name)
		if err != nil || s.Target != name {
			t.Errorf("ForTarget(%q): got %+v, %v", name, s.Target, err)
		}
	}
	if _, err := ForTarget("etcd"); !errors.Is(err, targets.ErrUnknownTarget) || !strings.Contains(err.Error(), `"etcd"`) {
		t.Errorf("ForTarget(etcd): got %v, want targets.ErrUnknownTarget naming it", err)
	}
	lanectl, _ := ForTarget(targets.Default)
	if want := []string{"lanes-overview.json", "lanes-rollout.json", "lanes.rules.yml"}; !slices.Equal(lanectl.Names(), want) {
		t.Errorf("default target: got files %v, want %v (unchanged)", lanectl.Names(), want)
	}
}

// TestDashboardsDecodeStrictly decodes each dashboard into the foundation
// SDK's types, rejecting unknown fields, and checks the conventions Grafana
// users rely on.
func TestDashboardsDecodeStrictly(t *testing.T) {
	wantUID := map[string]string{
		"lanes-overview.json":     gen.OverviewUID,
		"lanes-rollout.json":      gen.RolloutUID,
		"elastickv-overview.json": gen.ElastickvOverviewUID,
		"elastickv-rollout.json":  gen.ElastickvRolloutUID,
	}
	for _, file := range shippedDashboards(t) {
		t.Run(file, func(t *testing.T) {
			d, err := decodeDashboard(file)
			if err != nil {
				t.Fatal(err)
			}
			if d.Uid == nil || *d.Uid != wantUID[file] {
				t.Errorf("got uid %v, want stable uid %q", d.Uid, wantUID[file])
			}
			if d.Title == nil || *d.Title == "" {
				t.Error("dashboard has no title")
			}

			vars := map[string]dashboard.VariableModel{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v
			}
			if ds, ok := vars[gen.VarDatasource]; !ok || ds.Type != dashboard.VariableTypeDatasource || ds.Query == nil || ds.Query.String == nil || *ds.Query.String != "prometheus" {
				t.Errorf("got datasource variable %s, want a datasource variable of type prometheus", prettyJSON(ds))
			}
			for _, name := range []string{gen.VarJob} {
				v, ok := vars[name]
				if !ok || v.Type != dashboard.VariableTypeQuery || v.Query == nil || v.Query.String == nil {
					t.Errorf("got %s variable %s, want a label_values query variable", name, prettyJSON(v))
					continue
				}
				if _, label, err := labelValuesSelector(*v.Query.String); err != nil || label != name {
					t.Errorf("variable %s: got query %q (%v), want label_values(..., %s)", name, *v.Query.String, err, name)
				}
			}
			for _, v := range d.Templating.List {
				if v.Type == dashboard.VariableTypeQuery {
					if _, label, err := labelValuesSelector(*v.Query.String); err != nil || label != "node_id" && label != "job" && label != gen.VarGroup {
						t.Errorf("variable %s: got query %q (%v), want label_values over job, node_id or group", v.Name, *v.Query.String, err)
					}
					if v.Datasource == nil || v.Datasource.Uid == nil || *v.Datasource.Uid != "${datasource}" {
						t.Errorf("variable %s: got datasource %s, want ${datasource}", v.Name, prettyJSON(v.Datasource))
					}
				}
			}

			ps, rows := panels(d)
			ids := map[uint32]string{}
			for _, r := range rows {
				if prev, dup := ids[r.Id]; dup {
					t.Errorf("row %q: id %d already used by %s", deref(r.Title), r.Id, prev)
				}
				ids[r.Id] = "row " + deref(r.Title)
			}
			if len(ps) == 0 {
				t.Fatal("dashboard has no panels")
			}
			for _, p := range ps {
				name := panelName(file, p)
				if p.Id == nil {
					t.Errorf("%s: no id", name)
				} else if prev, dup := ids[*p.Id]; dup {
					t.Errorf("%s: id %d already used by %s", name, *p.Id, prev)
				} else {
					ids[*p.Id] = name
				}
				if p.Description == nil || len(*p.Description) < 40 {
					t.Errorf("%s: got description %q, want one that says what a bad value means", name, deref(p.Description))
				}
				if p.Type == "text" {
					// A text panel says what the metrics cannot show; it
					// has no query, unit or data source.
					if o, ok := p.Options.(*text.Options); !ok || len(o.Content) < 200 || o.Mode != text.TextModeMarkdown {
						t.Errorf("%s: got options %s, want markdown that explains", name, prettyJSON(p.Options))
					}
					continue
				}
				if p.FieldConfig == nil || p.FieldConfig.Defaults.Unit == nil || *p.FieldConfig.Defaults.Unit == "" {
					t.Errorf("%s: no unit", name)
				}
				if p.Datasource == nil || p.Datasource.Uid == nil || *p.Datasource.Uid != "${datasource}" {
					t.Errorf("%s: got datasource %s, want the ${datasource} variable", name, prettyJSON(p.Datasource))
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: no queries", name)
				}
			}
		})
	}
}

// TestDashboardJSONHasNoEmptyValues catches options the SDK leaves as ""
// (an unset enum): Grafana's migrations treat them as invalid settings.
func TestDashboardJSONHasNoEmptyValues(t *testing.T) {
	for _, file := range shippedDashboards(t) {
		raw, err := File(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if strings.HasSuffix(strings.TrimSuffix(line, ","), `: ""`) {
				t.Errorf("%s:%d: empty value: %s", file, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestQueriesParse parses every dashboard query, every variable selector
// and every rule expression with Prometheus' own parser after substituting
// the Grafana variables, and checks that dashboards read counters and
// histograms over $__rate_interval rather than a hard-coded range.
func TestQueriesParse(t *testing.T) {
	for _, s := range Sets() {
		t.Run(s.Target, func(t *testing.T) { testQueriesParse(t, s) })
	}
}

func testQueriesParse(t *testing.T, s Set) {
	p := newParser()
	vars := staticVars()
	qs := allQueries(t, s)
	if len(qs) < 20 {
		t.Fatalf("got %d queries, want the dashboards' and rules' (at least 20)", len(qs))
	}
	for _, q := range qs {
		expr, err := substitute(q.expr, vars)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		e, err := p.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: parse %q: %v", q.where, expr, err)
			continue
		}
		if q.rule {
			continue
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if ms, ok := n.(*parser.MatrixSelector); ok && ms.Range != rateIntervalSentinel {
				t.Errorf("%s: range [%s] in %q: want [$__rate_interval]", q.where, ms.Range, q.expr)
			}
			return nil
		})
	}
}

// TestSubstitute checks the variable substitution the other tests rely on,
// including that a misspelt variable is caught.
func TestSubstitute(t *testing.T) {
	vars := map[string]string{"job": "elastickv", "__rate_interval": "1m"}
	tests := []struct {
		in, want, wantErr string
	}{
		{in: `rate(x{job=~"$job"}[$__rate_interval])`, want: `rate(x{job=~"elastickv"}[1m])`},
		{in: `x{job=~"${job}"}`, want: `x{job=~"elastickv"}`},
		{in: `x{job=~"${job:regex}"}`, want: `x{job=~"elastickv"}`},
		{in: `x{job=~"[[job]]"}`, want: `x{job=~"elastickv"}`},
		{in: `x{job=~"$jbo"}`, wantErr: "unknown Grafana variable(s) [jbo]"},
	}
	for _, tt := range tests {
		got, err := substitute(tt.in, vars)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("substitute(%q): got error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("substitute(%q): got %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestPromtoolCheckRules runs the real promtool over the shipped rules.
func TestPromtoolCheckRules(t *testing.T) {
	for _, s := range Sets() {
		t.Run(s.Target, func(t *testing.T) {
			out := promtool(t, "check", "rules", writeRules(t, s))
			if !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool check rules %s: got\n%s\nwant SUCCESS", s.RulesFile, out)
			}
		})
	}
}

// TestPromtoolTestRules runs the rule unit tests in testdata with the real
// promtool: every alert firing and not firing.
func TestPromtoolTestRules(t *testing.T) {
	for _, s := range Sets() {
		t.Run(s.Target, func(t *testing.T) {
			data, err := File(s.RulesFile)
			if err != nil {
				t.Fatal(err)
			}
			if out := promtoolTestRules(t, s, data, rulesTestFile(s)); !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool test rules: got\n%s\nwant SUCCESS", out)
			}
		})
	}
}

// rulesTestFile is the promtool unit test file of a set's default rules.
func rulesTestFile(s Set) string {
	return strings.TrimSuffix(s.RulesFile, ".yml") + ".test.yml"
}

// promtoolTestRules writes rules as the set's rules file and testdata's
// testsName next to it, as the test file's rule_files expects, and runs
// promtool test rules over them.
func promtoolTestRules(t *testing.T, s Set, rules []byte, testsName string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "testdata"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, s.RulesFile), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("testdata", testsName))
	if err != nil {
		t.Fatal(err)
	}
	testsPath := filepath.Join(dir, "testdata", testsName)
	if err := os.WriteFile(testsPath, tests, 0o644); err != nil {
		t.Fatal(err)
	}
	return promtool(t, "test", "rules", testsPath)
}

// TestEveryAlertIsTestedBothWays reads the promtool unit tests and checks
// that each alert in the rules has a case where it fires and a case where it
// stays quiet, and that every alert carries the labels and annotations a
// pager needs.
func TestEveryAlertIsTestedBothWays(t *testing.T) {
	wantAlerts := map[string][]string{
		targets.Lanectl().Name:   {"LanectlHeartbeatLaneDrops", "LanectlFlagStateDiverged", "LanectlSyncModeUnexpected", "LanectlDispatchErrorsRising", "LanectlLeaderChangesSpiking"},
		targets.Elastickv().Name: {"ElastickvDispatchDrops", "ElastickvDispatchErrorsRising", "ElastickvStepQueueFull", "ElastickvGroupWithoutLeader", "ElastickvSyncModeUnexpected", "ElastickvLeaderChangesSpiking"},
	}
	for _, s := range Sets() {
		t.Run(s.Target, func(t *testing.T) { testEveryAlertIsTestedBothWays(t, s, wantAlerts[s.Target]) })
	}
}

func testEveryAlertIsTestedBothWays(t *testing.T, s Set, want []string) {
	type cases struct{ fires, quiet bool }
	tested := map[string]*cases{}
	for _, c := range promtoolAlertCases(t, rulesTestFile(s)) {
		if tested[c.alert] == nil {
			tested[c.alert] = &cases{}
		}
		if c.fires {
			tested[c.alert].fires = true
		} else {
			tested[c.alert].quiet = true
		}
	}
	alerts := 0
	for _, g := range rules(t, s).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			c := tested[r.Alert]
			if c == nil || !c.fires || !c.quiet {
				t.Errorf("alert %s: got tests %+v, want a firing and a not-firing case in testdata/%s", r.Alert, c, rulesTestFile(s))
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: got severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
		}
	}
	if alerts != len(want) {
		t.Errorf("got %d alerts, want %d: %v", alerts, len(want), want)
	}
	for _, a := range want {
		if tested[a] == nil {
			t.Errorf("alert %s: not tested", a)
		}
	}
}

// TestExport writes the embedded files to a directory and reads them back.
func TestExport(t *testing.T) {
	wantFiles := map[string][]string{
		targets.Lanectl().Name:   {"lanes-overview.json", "lanes-rollout.json", "lanes.rules.yml"},
		targets.Elastickv().Name: {"elastickv-overview.json", "elastickv-rollout.json", "elastickv.rules.yml"},
	}
	for _, s := range Sets() {
		t.Run(s.Target, func(t *testing.T) { testExport(t, s, wantFiles[s.Target]) })
	}
}

func testExport(t *testing.T, s Set, want []string) {
	dir := filepath.Join(t.TempDir(), "out", "nested")
	paths, err := s.Export(dir, DefaultRuleOptions())
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if len(paths) != len(want) {
		t.Fatalf("got %v, want %v", paths, want)
	}
	for i, name := range want {
		if paths[i] != filepath.Join(dir, name) {
			t.Errorf("path %d: got %s, want %s", i, paths[i], filepath.Join(dir, name))
		}
		got, err := os.ReadFile(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := File(name)
		if !bytes.Equal(got, orig) {
			t.Errorf("%s: exported bytes differ from the embedded file", name)
		}
	}
	// Exporting again replaces the files and leaves no temporary files.
	if err := os.WriteFile(paths[0], []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Export(dir, DefaultRuleOptions()); err != nil {
		t.Fatalf("second Export: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(want) {
		t.Errorf("got %d entries in %s after re-export, want %d", len(entries), dir, len(want))
	}
	if got, _ := os.ReadFile(paths[0]); bytes.Equal(got, []byte("stale")) {
		t.Error("re-export did not replace the stale file")
	}
}

func TestExportErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string
	}{
		{name: "empty", dir: "", want: "empty directory name"},
		{name: "file", dir: file, want: "not a directory"},
		{name: "under a file", dir: filepath.Join(file, "sub"), want: "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lanectlSet().Export(tt.dir, DefaultRuleOptions())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Export(%q): got error %v, want one containing %q", tt.dir, err, tt.want)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func writeRules(t *testing.T, s Set) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), s.RulesFile)
	data, err := File(s.RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRolloutDashboardCoversDefaultGates keeps the soak dashboard in step
// with the gates lanectl soak evaluates: every default gate that judges a
// metric has a panel whose title starts with its name, and every such title
// names a real gate.
func TestRolloutDashboardCoversDefaultGates(t *testing.T) {
	d, err := decodeDashboard("lanes-rollout.json")
	if err != nil {
		t.Fatal(err)
	}
	gateNames := map[string]bool{}
	for _, g := range targets.Lanectl().Gates() {
		gateNames[g.Name] = true
	}
	shown := map[string]bool{}
	ps, _ := panels(d)
	for _, p := range ps {
		name, _, ok := strings.Cut(deref(p.Title), ":")
		if !ok {
			continue
		}
		if !gateNames[name] {
			t.Errorf("panel %q: %q is not a default gate (gates: %v)", deref(p.Title), name, gateNames)
		}
		shown[name] = true
	}
	for name := range gateNames {
		// coverage is about the data itself, not a metric to plot.
		if name != "coverage" && !shown[name] {
			t.Errorf("default gate %s has no panel in lanes-rollout.json", name)
		}
	}
}

// TestStrictDecodeRejectsUnknownFields shows the strict decode is not
// vacuous: a field Grafana's schema does not have, anywhere in the
// dashboard, is an error naming it.
func TestStrictDecodeRejectsUnknownFields(t *testing.T) {
	raw, err := File("lanes-overview.json")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(d map[string]any)
	}{
		{"dashboard", func(d map[string]any) { d["bogus"] = 1 }},
		{"panel", func(d map[string]any) { panelAt(d, 1)["bogus"] = 1 }},
		{"query", func(d map[string]any) { panelAt(d, 1)["targets"].([]any)[0].(map[string]any)["exp"] = "up" }},
		{"panel options", func(d map[string]any) { panelAt(d, 4)["options"].(map[string]any)["bogus"] = 1 }},
		{"custom field config", func(d map[string]any) {
			panelAt(d, 4)["fieldConfig"].(map[string]any)["defaults"].(map[string]any)["custom"].(map[string]any)["lineWidthz"] = 1
		}},
		{"variable", func(d map[string]any) {
			d["templating"].(map[string]any)["list"].([]any)[1].(map[string]any)["bogus"] = 1
		}},
		{"wrong type", func(d map[string]any) { panelAt(d, 1)["title"] = 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			tt.mutate(d)
			mutated, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeDashboardJSON("mutated", mutated); err == nil {
				t.Errorf("got no error, want the strict decode to reject the %s change", tt.name)
			}
		})
	}
	if _, err := decodeDashboardJSON("unchanged", raw); err != nil {
		t.Errorf("unchanged dashboard: got %v, want no error", err)
	}
}

func panelAt(d map[string]any, i int) map[string]any {
	return d["panels"].([]any)[i].(map[string]any)
}

// TestRulesRenderedForARollout renders each set's rules for a nosync
// cluster (and, for the lanectl target, soak stages that take two days),
// checks them with promtool and runs their own promtool unit tests: the
// alerts follow the options, not the defaults.
func TestRulesRenderedForARollout(t *testing.T) {
	tests := []struct {
		set       Set
		opts      RuleOptions
		testsName string
		header    []string
	}{
		{
			set:       lanectlSet(),
			opts:      RuleOptions{SyncMode: lanes.SyncModeNoSync, FlagDivergedFor: model.Duration(50 * time.Hour)},
			testsName: "lanes.rules.nosync-50h.test.yml",
			header:    []string{"--sync-mode nosync", "--flag-diverged-for 50h"},
		},
		{
			set:       elastickvSet(),
			opts:      RuleOptions{SyncMode: lanes.SyncModeNoSync, FlagDivergedFor: model.Duration(50 * time.Hour)},
			testsName: "elastickv.rules.nosync.test.yml",
			header:    []string{"--sync-mode nosync"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.set.Target, func(t *testing.T) {
			data, err := tt.set.Rules(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			rulesPath := filepath.Join(t.TempDir(), tt.set.RulesFile)
			if err := os.WriteFile(rulesPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := promtool(t, "check", "rules", rulesPath); !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool check rules: got\n%s\nwant SUCCESS", out)
			}
			if out := promtoolTestRules(t, tt.set, data, tt.testsName); !strings.Contains(out, "SUCCESS") {
				t.Errorf("promtool test rules: got\n%s\nwant SUCCESS", out)
			}
			for _, want := range tt.header {
				if !bytes.Contains(data, []byte(want)) {
					t.Errorf("rendered header does not say %q", want)
				}
			}
			exported, err := tt.set.Export(filepath.Join(t.TempDir(), "export"), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, path := range exported {
				if filepath.Base(path) != tt.set.RulesFile {
					continue
				}
				found = true
				if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
					t.Errorf("exported %s: %v; want the rules rendered for the options", path, err)
				}
			}
			if !found {
				t.Errorf("export wrote %v, want %s among them", exported, tt.set.RulesFile)
			}
		})
	}
}

func TestRulesRefuseBadOptions(t *testing.T) {
	tests := []struct {
		opts RuleOptions
		want string
	}{
		{RuleOptions{SyncMode: lanes.SyncMode(7), FlagDivergedFor: model.Duration(time.Hour)}, "unknown sync mode 7"},
		{RuleOptions{SyncMode: lanes.SyncModeSync}, "flag-diverged-for 0s must be positive"},
	}
	for _, s := range Sets() {
		for _, tt := range tests {
			if _, err := s.Rules(tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), s.RulesFile) {
				t.Errorf("%s Rules(%+v): got %v, want an error naming %s containing %q", s.Target, tt.opts, err, s.RulesFile, tt.want)
			}
			if _, err := s.Export(t.TempDir(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s Export with %+v: got %v, want an error containing %q", s.Target, tt.opts, err, tt.want)
			}
		}
	}
}

// shippedDashboards lists every target's dashboards.
func shippedDashboards(t *testing.T) []string {
	t.Helper()
	var names []string
	for _, s := range Sets() {
		names = append(names, dashboardFiles(t, s)...)
	}
	return names
}
