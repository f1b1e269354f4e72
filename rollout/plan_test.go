package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each *.bad.yml starts with "# error: LINE: TEXT" comments: every one must
// appear in the error as "FILE:LINE: TEXT...".
func TestLoadPlanBad(t *testing.T) {
	files, err := filepath.Glob("testdata/plans/*.bad.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := expectedErrors(t, f)
			p, err := LoadPlan(f)
			if err == nil {
				t.Fatalf("LoadPlan(%s) = %+v, want an error", f, p)
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), f+":"+w) {
					t.Errorf("got error:\n%v\nwant it to contain %q", err, f+":"+w)
				}
			}
		})
	}
}

func expectedErrors(t *testing.T, file string) []string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range strings.Split(string(data), "\n") {
		rest, ok := strings.CutPrefix(line, "# error: ")
		if !ok {
			break
		}
		want = append(want, rest)
	}
	if len(want) == 0 {
		t.Fatalf("%s: no '# error: LINE: TEXT' header", file)
	}
	return want
}

func TestLoadPlanGood(t *testing.T) {
	files, err := filepath.Glob("testdata/plans/*.good.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good fixtures: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := LoadPlan(f)
			if err != nil {
				t.Fatalf("LoadPlan: %v", err)
			}
			for _, r := range p.Replicas {
				for _, render := range []func(Replica) (string, error){p.EnableCommand, p.DisableCommand} {
					if _, err := render(r); err != nil {
						t.Errorf("render command for %s: %v", r.Name, err)
					}
				}
			}
		})
	}
}

func TestLoadPlanFull(t *testing.T) {
	p, err := LoadPlan("testdata/plans/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := "testdata/plans"
	checks := []struct {
		name      string
		got, want any
	}{
		{"prometheus.url", p.Prometheus.URL, "http://127.0.0.1:9090"},
		{"prometheus.query_timeout", p.Prometheus.QueryTimeout, 45 * time.Second},
		{"basic_auth.username", p.Prometheus.HTTPConfig.BasicAuth.Username, "ops"},
		{"follow_redirects default", p.Prometheus.HTTPConfig.FollowRedirects, true},
		{"flag", p.Flag, Flag{Name: "ELASTICKV_RAFT_DISPATCHER_LANES", Value: "1"}},
		{"expect_sync_mode", p.ExpectSyncMode, "nosync"},
		{"soak.hours", p.Soak.Hours, 1.5},
		{"soak.window", p.Soak.Window, 90 * time.Minute},
		{"soak.interval", p.Soak.Interval, 30 * time.Second},
		{"ssh.known_hosts", p.SSH.KnownHosts, filepath.Join(dir, "known_hosts")},
		{"ssh.config", p.SSH.Config, filepath.Join(dir, "ssh_config")},
		{"ssh.identity_files", strings.Join(p.SSH.IdentityFiles, ","), "~/.ssh/id_ed25519," + filepath.Join(dir, "keys/id_rollout")},
		{"ssh.connect_timeout", p.SSH.ConnectTimeout, 5 * time.Second},
		{"replicas", len(p.Replicas), 4},
		{"n1 selector", p.Replicas[0].Selector, `node_id="n1"`},
		{"n2 selector", p.Replicas[1].Selector, `instance=~"10\\.0\\.0\\.2:.*", job="elastickv"`},
		{"n2 http trailing slash trimmed", p.Replicas[1].HTTP, "http://127.0.0.1:9102"},
		{"n3 default selector", p.Replicas[2].Selector, `node_id="n3"`},
		{"stages", p.Stages, []Stage{{"staging", 1}, {"canary", 1}, {"fleet", 2}}},
		{"commands.timeout", p.Commands.Timeout, 90 * time.Second},
		{"verify timing", []any{p.Verify.Timeout, p.Verify.Interval, p.Verify.Settle}, []any{45 * time.Second, 500 * time.Millisecond, 3}},
		{"verify.http (the target's)", p.Verify.HTTP, []string{"/healthz"}},
		{"verify.status (the target's)", p.Verify.Status, "/status"},
		{"soak.gates", len(p.Soak.Gates), 2},
		{"state", p.StatePath, filepath.Join(dir, "run/state.json")},
	}
	for _, c := range checks {
		if got, want := strings.TrimSpace(fmtAny(c.got)), fmtAny(c.want); got != want {
			t.Errorf("%s: got %s, want %s", c.name, got, want)
		}
	}
	cmd, err := p.EnableCommand(p.Replicas[1])
	if err != nil {
		t.Fatal(err)
	}
	if want := "sudo /usr/local/bin/elastickv-setenv ELASTICKV_RAFT_DISPATCHER_LANES=1 && sudo systemctl restart elastickv@n2"; cmd != want {
		t.Errorf("enable command: got %q, want %q", cmd, want)
	}
}

func TestLoadPlanDefaults(t *testing.T) {
	p, err := LoadPlan("testdata/plans/minimal.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"flag", p.Flag, Flag{Name: "ELASTICKV_RAFT_DISPATCHER_LANES", Value: "1"}},
		{"expect_sync_mode", p.ExpectSyncMode, "sync"},
		{"soak.window", p.Soak.Window, 24 * time.Hour},
		{"soak.hours", p.Soak.Hours, 24.0},
		{"soak.interval", p.Soak.Interval, time.Minute},
		{"ssh.known_hosts", p.SSH.KnownHosts, "~/.ssh/known_hosts"},
		{"ssh.config", p.SSH.Config, "~/.ssh/config"},
		{"ssh.connect_timeout", p.SSH.ConnectTimeout, 10 * time.Second},
		{"max_parallel", p.Stages[0].MaxParallel, 1},
		{"commands.timeout", p.Commands.Timeout, 2 * time.Minute},
		{"verify timing", []any{p.Verify.Timeout, p.Verify.Interval, p.Verify.Settle}, []any{2 * time.Minute, time.Second, 2}},
		{"verify.http", p.Verify.HTTP, []string{"/healthz"}},
		{"verify.metrics", p.Verify.Metrics, []string{"elastickv_raft_dispatcher_lanes_enabled{{sel}}"}},
		{"verify.status", p.Verify.Status, "/status"},
		{"flag proved by metrics", p.Verify.FlagProof.FromMetrics(), true},
		{"commands.read", p.Commands.Read, ""},
		{"replica http_config", p.Replicas[0].HTTPConfig.FollowRedirects, true},
		{"commands.env_file", p.Commands.EnvFile, "/etc/default/elastickv"},
		{"state", p.StatePath, filepath.Join("testdata/plans", "lanectl-state.json")},
		{"http_config.enable_http2", p.Prometheus.HTTPConfig.EnableHTTP2, true},
		{"prometheus.query_timeout", p.Prometheus.QueryTimeout, 30 * time.Second},
	}
	for _, c := range checks {
		if got, want := fmtAny(c.got), fmtAny(c.want); got != want {
			t.Errorf("%s: got %s, want %s", c.name, got, want)
		}
	}
	want := map[string]string{
		"enable":  `f=/etc/default/elastickv && touch "$f" && { grep -v '^ELASTICKV_RAFT_DISPATCHER_LANES=' "$f" || true; } > "$f.lanectl-tmp" && echo ELASTICKV_RAFT_DISPATCHER_LANES=1 >> "$f.lanectl-tmp" && mv "$f.lanectl-tmp" "$f" && systemctl restart elastickv`,
		"disable": `f=/etc/default/elastickv && touch "$f" && { grep -v '^ELASTICKV_RAFT_DISPATCHER_LANES=' "$f" || true; } > "$f.lanectl-tmp" && mv "$f.lanectl-tmp" "$f" && systemctl restart elastickv`,
	}
	enable, err := p.EnableCommand(p.Replicas[0])
	if err != nil {
		t.Fatal(err)
	}
	disable, err := p.DisableCommand(p.Replicas[0])
	if err != nil {
		t.Fatal(err)
	}
	if enable != want["enable"] {
		t.Errorf("default enable:\ngot  %s\nwant %s", enable, want["enable"])
	}
	if disable != want["disable"] {
		t.Errorf("default disable:\ngot  %s\nwant %s", disable, want["disable"])
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"1", "1"},
		{"/etc/default/elastickv", "/etc/default/elastickv"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(reboot)", "'$(reboot)'"},
		{"x;y", "'x;y'"},
		{"`id`", "'`id`'"},
	}
	for _, tt := range tests {
		if got := ShellQuote(tt.in); got != tt.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// Values are quoted even when a template author forgot to: an env file path
// with a space and a quote stays one word.
func TestRenderQuotesValues(t *testing.T) {
	got, err := renderCommand("enable", "setenv {{.EnvFile}} {{.Flag.Name}}={{.Flag.Value}} # {{.Replica.Name}}",
		Flag{Name: "F", Value: "a:b"}, "/srv/my env/it's", Replica{Name: "n-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := `setenv '/srv/my env/it'\''s' F=a:b # n-1`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestParseSSHAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    SSHAddress
		wantErr bool
	}{
		{in: "h", want: SSHAddress{Host: "h"}},
		{in: "root@10.0.0.1:22", want: SSHAddress{User: "root", Host: "10.0.0.1", Port: "22"}},
		{in: "[::1]:2222", want: SSHAddress{Host: "::1", Port: "2222"}},
		{in: "::1", want: SSHAddress{Host: "::1"}},
		{in: "h:0", wantErr: true},
		{in: "h:ssh", wantErr: true},
		{in: "-oProxyCommand=x", wantErr: true},
		{in: "a b", wantErr: true},
		{in: "us$er@h", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseSSHAddress(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseSSHAddress(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && got != tt.want {
			t.Errorf("ParseSSHAddress(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}
