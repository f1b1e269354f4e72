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
			WritesOK int64 `json:"writes_ok"`
		}
		Transfers struct {
			Follower string
			Forced   int
			Legacy   transferLayoutJSON
			FourLane transferLayoutJSON `json:"four_lane"`
			Ratio    *float64           `json:"delivery_p99_ratio"`
		} `json:"snapshot_transfers"`
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
	if sum.Load.WritesOK == 0 {
		t.Errorf("load %+v: want writes", sum.Load)
	}
	// The head-of-line comparison is measured in both layouts; which one
	// is faster is the summary's to print, not this test's to assert.
	tr := sum.Transfers
	if tr.Follower != "n3" || tr.Forced == 0 {
		t.Errorf("snapshot transfers to %q, %d forced; want some to n3", tr.Follower, tr.Forced)
	}
	for name, l := range map[string]transferLayoutJSON{"legacy": tr.Legacy, "four-lane": tr.FourLane} {
		l.check(t, name)
	}
	if tr.Ratio == nil || *tr.Ratio <= 0 {
		t.Errorf("delivery p99 ratio %v, want a positive number", tr.Ratio)
	}
	for _, want := range []string{"soak of n1: pass", "soak of n2: pass", "soak of n3: pass", "rollout complete", "verdict: pass",
		"other groups' MsgApp delivery p99 to n3 during snapshot transfers: legacy "} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	requireEmpty(t, tmp)
}

// transferLayoutJSON is one layout's snapshot transfers in the JSON summary.
type transferLayoutJSON struct {
	Layout        string
	Transfers     int
	SnapshotBytes int      `json:"snapshot_bytes"`
	Appends       int      `json:"appends"`
	DeliveryP99   *float64 `json:"delivery_p99_seconds"`
}

// check wants transfers of a multi-MiB snapshot with other groups' appends
// delivered during them, and a positive p99.
func (l transferLayoutJSON) check(t *testing.T, name string) {
	t.Helper()
	if l.Layout != name || l.Transfers == 0 || l.SnapshotBytes < 1<<20 || l.Appends == 0 || l.DeliveryP99 == nil || *l.DeliveryP99 <= 0 {
		t.Errorf("%s transfers: got %+v (p99 %v); want transfers of at least 1 MiB, appends delivered during them, a positive p99", name, l, l.DeliveryP99)
	}
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
