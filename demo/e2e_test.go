package demo

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// lanectlBinary builds lanectl from this tree once per test run.
func lanectlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "lanectl-demo-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "lanectl")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/lanectl")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("go build ./cmd/lanectl: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// demoCmd runs lanectl demo with its own TMPDIR, so the test can check that
// the demo left nothing behind there.
func demoCmd(t *testing.T, ctx context.Context, args ...string) (*exec.Cmd, string) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.CommandContext(ctx, lanectlBinary(t), append([]string{"demo"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.WaitDelay = 5 * time.Second
	return cmd, tmp
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("run lanectl demo: %v", err)
	return -1
}

func requireEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("the demo left %v behind in its TMPDIR", names)
	}
}

// lanectl demo as a user runs it: built from the tree, a subprocess, 30s.
// Every replica must end with the flag on, proven on its own /metrics, and
// the summary must carry a passing soak for each of them.
func TestDemoSubprocessHealthy(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd, tmp := demoCmd(t, ctx, "--duration", "30s", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	code := exitCode(t, cmd.Run())
	t.Logf("lanectl demo --duration 30s took %v", time.Since(start).Round(time.Second))
	if code != 0 {
		t.Fatalf("exit code %d, want 0\nstderr:\n%s", code, stderr.String())
	}
	var sum struct {
		Verdict  string
		Replicas []struct {
			Name      string
			FlagOn    *bool     `json:"flag_on"`
			EnabledAt time.Time `json:"enabled_at"`
		}
		Soaks []struct {
			Replicas []string
			Verdict  string
		}
		Lanes []struct {
			Lane       string
			DropsAfter *float64 `json:"drops_after"`
		}
		Load struct {
			WritesOK        int64 `json:"writes_ok"`
			SnapshotsForced int64 `json:"snapshots_forced"`
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v\n%s", err, stdout.String())
	}
	if sum.Verdict != "pass" {
		t.Errorf("verdict %q, want pass", sum.Verdict)
	}
	if len(sum.Replicas) != 3 {
		t.Fatalf("got %d replicas in the summary, want 3", len(sum.Replicas))
	}
	for _, r := range sum.Replicas {
		if r.FlagOn == nil || !*r.FlagOn || r.EnabledAt.IsZero() {
			t.Errorf("replica %s: flag_on %v, enabled_at %v; want the flag on with an enable time", r.Name, r.FlagOn, r.EnabledAt)
		}
	}
	var soaks []string
	for _, s := range sum.Soaks {
		soaks = append(soaks, strings.Join(s.Replicas, ",")+"="+s.Verdict)
	}
	if got, want := strings.Join(soaks, " "), "n1=pass n2=pass n3=pass"; got != want {
		t.Errorf("soaks %q, want %q", got, want)
	}
	var sawHeartbeat bool
	for _, l := range sum.Lanes {
		if l.Lane == "heartbeat" {
			sawHeartbeat = true
			if l.DropsAfter == nil || *l.DropsAfter != 0 {
				t.Errorf("heartbeat drops after the flag: %v, want 0", l.DropsAfter)
			}
		}
	}
	if !sawHeartbeat {
		t.Error("no heartbeat lane in the summary")
	}
	if sum.Load.WritesOK == 0 || sum.Load.SnapshotsForced == 0 {
		t.Errorf("load %+v: want writes and forced snapshots", sum.Load)
	}
	for _, want := range []string{"soak of n1: pass", "soak of n2: pass", "soak of n3: pass", "rollout complete", "verdict: pass"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	requireEmpty(t, tmp)
}

// --inject-heartbeat-drops: the staging replica drops heartbeats on the new
// code path, its soak fails the heartbeat_drops gate, advance refuses and
// the demo exits 1 with the gate table and the rollback to run.
func TestDemoSubprocessRefused(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd, tmp := demoCmd(t, ctx, "--duration", "20s", "--inject-heartbeat-drops")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(t, cmd.Run()); code != 1 {
		t.Fatalf("exit code %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"soak of n1: fail (heartbeat_drops: canary n1: ",
		"| heartbeat_drops        | fail    | n1 (canary)",
		"fail (heartbeat_drops)",
		"lanectl rollback --replica n1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "enabled n2") {
		t.Errorf("the rollout went on to n2 after a failed soak:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "lanectl: rollout refused: soak failed: n1: heartbeat_drops") {
		t.Errorf("stderr %q: want the refusal naming the failing gate", stderr.String())
	}
	requireEmpty(t, tmp)
}

// Ctrl-C in the middle of a soak: the demo stops, exits 2 (no verdict) and
// removes everything it made.
func TestDemoSubprocessInterrupted(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd, tmp := demoCmd(t, ctx, "--duration", "20s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(pipe)
	signalled := false
	for sc.Scan() {
		if !signalled && strings.Contains(sc.Text(), "soaking n1") {
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			signalled = true
		}
	}
	_, _ = io.Copy(io.Discard, pipe)
	code := exitCode(t, cmd.Wait())
	if !signalled {
		t.Fatalf("never saw the soak start; exit %d, stderr:\n%s", code, stderr.String())
	}
	if code != 2 || !strings.Contains(stderr.String(), "demo interrupted") {
		t.Errorf("exit %d, stderr %q; want 2 and 'demo interrupted'", code, stderr.String())
	}
	requireEmpty(t, tmp)
}
