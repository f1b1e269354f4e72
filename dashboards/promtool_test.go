package dashboards

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// promtool runs the real promtool (Debian's prometheus package installs it)
// and returns its combined output; a non-zero exit fails the test with it.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found in PATH (install the prometheus package; scripts/test does): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// alertCase is one alert_rule_test entry of the promtool unit tests.
type alertCase struct {
	test  string
	alert string
	fires bool
}

// promtoolAlertCases reads a promtool unit test file in testdata.
func promtoolAlertCases(t *testing.T, name string) []alertCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			Name           string `yaml:"name"`
			AlertRuleTests []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("parse %s: %v", name, err)
	}
	var cases []alertCase
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTests {
			cases = append(cases, alertCase{test: tc.Name, alert: a.Alertname, fires: len(a.ExpAlerts) > 0})
		}
	}
	return cases
}
