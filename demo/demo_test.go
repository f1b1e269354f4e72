package demo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/rollout"
)

func TestTimingFor(t *testing.T) {
	tests := []struct {
		d       time.Duration
		wantErr string
	}{
		{d: 0, wantErr: "0s is too short to soak"},
		{d: 19 * time.Second, wantErr: "19s is too short to soak"},
		{d: MinDuration},
		{d: 30 * time.Second},
		{d: DefaultDuration},
		{d: time.Hour},
		{d: MaxDuration},
		{d: MaxDuration + time.Second, wantErr: "is longer than 24h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			tm, err := TimingFor(tt.d)
			if tt.wantErr != "" {
				if !errors.Is(err, ErrDuration) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("TimingFor(%v): got err %v, want ErrDuration containing %q", tt.d, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("TimingFor(%v): %v", tt.d, err)
			}
			if got := tm.Baseline + replicas*tm.Soak; got < tt.d-time.Second || got > tt.d+time.Second {
				t.Errorf("baseline %v + 3 soaks of %v = %v, want about %v", tm.Baseline, tm.Soak, got, tt.d)
			}
			// The coverage gate needs at least 90% of the steps: with ten
			// or more, one missing step is not already a verdict.
			if steps := tm.Soak / tm.Step; steps < 10 {
				t.Errorf("soak %v / step %v = %d steps, want at least 10", tm.Soak, tm.Step, steps)
			}
			if tm.Scrape*2 > tm.Step {
				t.Errorf("scrape %v, step %v: want at least two scrapes per step", tm.Scrape, tm.Step)
			}
			if tm.SnapshotEvery*2 > tm.Soak && tm.SnapshotEvery > 3*time.Second {
				t.Errorf("snapshot every %v, soak %v: want at least two forced snapshots per soak", tm.SnapshotEvery, tm.Soak)
			}
		})
	}
}

func TestReadEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    map[string]string
		wantErr string
	}{
		{name: "plain", body: "A=1\nB=two\n", want: map[string]string{"A": "1", "B": "two"}},
		{name: "comments and blanks", body: "# c\n\n  A = 1 \n", want: map[string]string{"A": "1"}},
		{name: "quotes", body: "A=\"x y\"\nB='z'\nC=\"unbalanced\n", want: map[string]string{"A": "x y", "B": "z", "C": "\"unbalanced"}},
		{name: "empty value", body: "A=\n", want: map[string]string{"A": ""}},
		{name: "last wins", body: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "no equals", body: "A=1\nbroken\n", wantErr: ":2: want KEY=VALUE"},
		{name: "no key", body: "=1\n", wantErr: ":1: want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "env")
			if err := os.WriteFile(path, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readEnvFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+tt.wantErr) {
					t.Fatalf("got err %v, want one containing %q", err, path+tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: got %q, want %q", k, got[k], v)
				}
			}
		})
	}
	if _, err := readEnvFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: got no error")
	}
}

// The plan the demo writes loads like any other, and its enable and disable
// commands, run with sh as the demo's runner runs them, flip the flag in
// the env file the replica is restarted from while keeping its other lines.
func TestPlanCommandsRewriteEnvFile(t *testing.T) {
	dir := t.TempDir()
	tm, err := TimingFor(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"n1", "n2", "n3"}
	urls := []string{"http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"}
	path, err := writePlan(planInput{Dir: dir, Names: names, HTTP: urls, Timing: tm, Verify: verifyTimeout, Restart: restartCommand, Commands: commandTimeout})
	if err != nil {
		t.Fatal(err)
	}
	p, err := rollout.LoadPlan(path)
	if err != nil {
		t.Fatalf("the demo's plan does not load: %v", err)
	}
	if p.Soak.Window != tm.Soak || p.Soak.Interval != tm.Step {
		t.Errorf("soak window %v interval %v, want %v and %v", p.Soak.Window, p.Soak.Interval, tm.Soak, tm.Step)
	}
	var order []string
	for _, r := range p.Order() {
		order = append(order, r.Stage+":"+r.Name)
	}
	if got, want := strings.Join(order, " "), "staging:n1 canary:n2 fleet:n3"; got != want {
		t.Errorf("rollout order %q, want %q", got, want)
	}
	if p.Prometheus.URL != "" || len(p.Prometheus.Targets) != 3 || p.Prometheus.Targets[1] != "http://127.0.0.1:2/metrics" {
		t.Errorf("prometheus %+v, want the three replicas' /metrics as embedded targets", p.Prometheus)
	}

	n2, _ := p.Replica("n2")
	envPath := filepath.Join(dir, envFileName("n2"))
	if err := writeEnvFile(envPath, "n2"); err != nil {
		t.Fatal(err)
	}
	sh := rollout.LocalRunner{Timeout: 10 * time.Second, Env: []string{"PATH=/usr/bin:/bin"}}
	steps := []struct {
		name     string
		command  func(rollout.Replica) (string, error)
		wantFlag string
	}{
		{"enable", p.EnableCommand, "1"},
		{"enable again", p.EnableCommand, "1"},
		{"disable", p.DisableCommand, ""},
	}
	for _, s := range steps {
		cmd, err := s.command(n2)
		if err != nil {
			t.Fatalf("%s: render: %v", s.name, err)
		}
		if !strings.Contains(cmd, envPath) {
			t.Errorf("%s: command %q does not name %s", s.name, cmd, envPath)
		}
		if _, err := sh.Run(t.Context(), n2, cmd); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		env, err := readEnvFile(envPath)
		if err != nil {
			t.Fatal(err)
		}
		if got := env.get(lanes.FlagEnv); got != s.wantFlag {
			t.Errorf("%s: %s=%q, want %q", s.name, lanes.FlagEnv, got, s.wantFlag)
		}
		if got := env.get(lanes.SyncModeEnv); got != "sync" {
			t.Errorf("%s: %s=%q, want the line kept as sync", s.name, lanes.SyncModeEnv, got)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tmp := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"too short", Config{Duration: 5 * time.Second, TempDir: tmp}, "too short to soak"},
		{"missing temp dir", Config{Duration: MinDuration, TempDir: filepath.Join(tmp, "missing")}, "create working directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, err := Run(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || sum != nil {
				t.Fatalf("got %v, %v; want no summary and an error containing %q", sum, err, tt.wantErr)
			}
			left, _ := os.ReadDir(tmp)
			if len(left) != 0 {
				t.Errorf("left behind in the temp dir: %v", left)
			}
		})
	}
}

// Cancelling the demo in the middle of a soak (Ctrl-C) stops it at once and
// releases everything: no file left in its temporary directory, and
// TestMain's goleak finds no goroutine of a replica, the store or the load.
func TestRunCancelledMidSoak(t *testing.T) {
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var progressed, judged int
	start := time.Now()
	sum, err := Run(ctx, Config{
		Duration: MinDuration,
		TempDir:  tmp,
		OnProgress: func(Progress) {
			progressed++
			cancel()
		},
		OnJudged: func(Judgement) { judged++ },
	})
	if !errors.Is(err, context.Canceled) || sum != nil {
		t.Fatalf("got %v, %v; want no summary and context.Canceled", sum, err)
	}
	if progressed != 1 || judged != 0 {
		t.Errorf("progress calls %d, judgements %d; want 1 and 0", progressed, judged)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("left behind in the temp dir: %v", left)
	}
	t.Logf("cancelled after %v", time.Since(start))
}
