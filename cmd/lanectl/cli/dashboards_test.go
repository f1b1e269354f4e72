package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/dashboards"
)

func runRoot(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, strings.NewReader(""), &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestDashboardsExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "grafana")
	stdout, stderr, code := runRoot(t, "dashboards", "export", dir)
	if code != ExitOK || stderr != "" {
		t.Fatalf("got exit %d, stderr %q, want 0 and nothing", code, stderr)
	}
	var want []string
	for _, name := range dashboards.Names() {
		want = append(want, filepath.Join(dir, name))
	}
	if got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got stdout lines %q, want %q", got, want)
	}
	for _, name := range dashboards.Names() {
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
	if got == nil || got.Dir != "out/dir" {
		t.Errorf("got options %+v, want Dir out/dir", got)
	}
}
