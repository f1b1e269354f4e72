package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/dashboards"
	"github.com/lanectl/lanectl/lanes"
)

func runRoot(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestDashboardsExport(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		files []string
	}{
		{name: "default", files: []string{"lanes-overview.json", "lanes-rollout.json", "lanes.rules.yml"}},
		{name: "lanectl", args: []string{"--target", "lanectl"}, files: []string{"lanes-overview.json", "lanes-rollout.json", "lanes.rules.yml"}},
		{name: "elastickv", args: []string{"--target", "elastickv"}, files: []string{"elastickv-overview.json", "elastickv-rollout.json", "elastickv.rules.yml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testDashboardsExport(t, tt.args, tt.files) })
	}
}

func testDashboardsExport(t *testing.T, args, files []string) {
	dir := filepath.Join(t.TempDir(), "grafana")
	stdout, stderr, code := runRoot(t, append([]string{"dashboards", "export", dir}, args...)...)
	if code != ExitOK || stderr != "" {
		t.Fatalf("got exit %d, stderr %q, want 0 and nothing", code, stderr)
	}
	var want []string
	for _, name := range files {
		want = append(want, filepath.Join(dir, name))
	}
	if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got stdout lines %q, want %q", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != len(files) {
		t.Errorf("got %d entries in %s (%v), want exactly %v", len(entries), dir, err, files)
	}
	for _, name := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := dashboards.File(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, embedded) {
			t.Errorf("%s: exported bytes differ from the embedded file", name)
		}
	}
}

func TestDashboardsExportErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{name: "no subcommand", args: []string{"dashboards"}, wantStderr: "missing subcommand: want export (see 'lanectl dashboards --help')"},
		{name: "no dir", args: []string{"dashboards", "export"}, wantStderr: "want exactly one argument, the directory to write into (got 0)"},
		{name: "two dirs", args: []string{"dashboards", "export", "a", "b"}, wantStderr: "(got 2)"},
		{name: "empty dir", args: []string{"dashboards", "export", ""}, wantStderr: "want exactly one argument"},
		{name: "dir is a file", args: []string{"dashboards", "export", file}, wantStderr: "export dashboards to " + file + ": not a directory"},
		{name: "sync mode typo", args: []string{"dashboards", "export", "d", "--sync-mode", "yes"}, wantStderr: `--sync-mode "yes": want sync or nosync`},
		{name: "empty sync mode", args: []string{"dashboards", "export", "d", "--sync-mode", ""}, wantStderr: `--sync-mode "": want sync or nosync`},
		{name: "duration without unit", args: []string{"dashboards", "export", "d", "--flag-diverged-for", "26"}, wantStderr: `--flag-diverged-for "26": want a positive duration`},
		{name: "zero duration", args: []string{"dashboards", "export", "d", "--flag-diverged-for", "0h"}, wantStderr: `--flag-diverged-for "0h": want a positive duration`},
		{name: "unknown target", args: []string{"dashboards", "export", "d", "--target", "etcd"}, wantStderr: `--target "etcd": dashboards: unknown target "etcd" (known targets: lanectl, elastickv)`},
		{name: "flag alert on elastickv", args: []string{"dashboards", "export", "d", "--target", "elastickv", "--flag-diverged-for", "50h"}, wantStderr: "--flag-diverged-for: the elastickv target's metrics do not show the flag, so its rules have no flag alert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runRoot(t, tt.args...)
			if code != ExitOperational {
				t.Errorf("got exit %d, want %d", code, ExitOperational)
			}
			if stdout != "" {
				t.Errorf("got stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("got stderr %q, want it to contain %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestDashboardsExportParsesArgs(t *testing.T) {
	var got *DashboardsExportOptions
	cmd := NewCmdDashboards(&IOStreams{}, func(o *DashboardsExportOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"export", "out/dir"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Dir != "out/dir" || got.Rules != dashboards.DefaultRuleOptions() || got.Set.Target != "lanectl" {
		t.Errorf("got options %+v, want Dir out/dir, the lanectl set and the default rule options", got)
	}
	cmd.SetArgs([]string{"export", "out/dir", "--sync-mode", " NOSYNC ", "--flag-diverged-for", "2d"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := dashboards.RuleOptions{SyncMode: lanes.SyncModeNoSync, FlagDivergedFor: model.Duration(48 * time.Hour)}
	if got.Rules != want {
		t.Errorf("--sync-mode ' NOSYNC ' --flag-diverged-for 2d: got %+v, want %+v", got.Rules, want)
	}
	// A fresh command: flags set by the run above stay set on cmd.
	cmd = NewCmdDashboards(&IOStreams{}, func(o *DashboardsExportOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"export", "out/ekv", "--target", "elastickv", "--sync-mode", "nosync"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Set.Target != "elastickv" || got.Set.RulesFile != dashboards.ElastickvRulesFile || got.Rules.SyncMode != lanes.SyncModeNoSync {
		t.Errorf("--target elastickv --sync-mode nosync: got set %s (%s), rules %+v", got.Set.Target, got.Set.RulesFile, got.Rules)
	}
}
