package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lanectl/lanectl/query/promtest"
)

// oneCanary puts the first follower (not the leader) alone in the canary
// stage and the rest in the fleet stage, and returns the canary's index.
func oneCanary(canary *int) func(i, leader int) string {
	return func(i, leader int) string {
		if *canary < 0 && i != leader {
			*canary = i
		}
		if i == *canary {
			return "canary"
		}
		return "fleet"
	}
}

// A canary whose soak fails: every other replica is frozen (SIGSTOP) for a
// few seconds, so the canary, still running and scraped, hears from no
// leader far longer than the last_contact gate allows. advance refuses with
// exit 1, prints the failing gate and its query, suggests the rollback, and
// changes no replica.
func TestE2EFailingCanaryRefused(t *testing.T) {
	canary := -1
	r := newRig(t, rigOptions{
		window:  30 * time.Second,
		stages:  "  - {name: canary}\n  - {name: fleet}\n",
		stageOf: oneCanary(&canary),
	})
	ctx := t.Context()
	r.advance(ctx, 0, "enabled "+r.fleet.names[canary])

	var frozen []int
	for i := range r.fleet.names {
		if i != canary {
			frozen = append(frozen, r.fleet.childPID(i))
		}
	}
	// Whatever happens below, never leave a replica frozen.
	t.Cleanup(func() {
		for _, pid := range frozen {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	for _, pid := range frozen {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3 * time.Second)
	for _, pid := range frozen {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	r.fleet.waitHealthy(20 * time.Second)

	before := r.state()
	res := r.advance(ctx, 1, "last_contact")
	for _, want := range []string{"soak failed", "lanectl rollback --replica " + r.fleet.names[canary], "last_contact fail:"} {
		if !strings.Contains(res.stdout+res.stderr, want) {
			t.Errorf("advance output lacks %q:\n%v", want, res)
		}
	}
	after := r.state()
	if got, want := len(after.Events), len(before.Events)+1; got != want {
		t.Fatalf("journal has %d events, want %d (only the soak verdict added)", got, want)
	}
	if e := after.Events[len(after.Events)-1]; e.Step != StepSoak || e.Verdict != "fail" {
		t.Errorf("last journal event = %+v, want the failed soak", e)
	}
	flags := make([]bool, len(r.fleet.names))
	flags[canary] = true
	r.requireFlags(ctx, flags...)

	// Running advance again records nothing new: same verdict, same window.
	r.advance(ctx, 1, "soak failed")
	if got := len(r.state().Events); got != len(after.Events) {
		t.Errorf("second refusal grew the journal to %d events, want %d", got, len(after.Events))
	}
}

// The enable command leaves the replica down: verification fails, advance
// runs the disable command by itself, verifies the replica is back without
// the flag, journals it all, and exits 1.
func TestE2EVerifyFailureRollsBack(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true, verifyTimeout: 4 * time.Second})
	stopCmd := fmt.Sprintf(`kill -USR1 "$(cat %s/{{.Replica.Name}}.pid)"`, r.fleet.dir)
	setCommand(t, r, "enable", defaultEnableCommand+" && "+stopCmd)
	ctx := t.Context()
	res := r.advance(ctx, 1, "verification failed")
	if !strings.Contains(res.stdout, "disabled n1: verified") || !strings.Contains(res.stderr, "rolled back n1") {
		t.Errorf("advance output does not show the rollback:\n%v", res)
	}
	var got []string
	for _, e := range r.state().Events {
		got = append(got, fmt.Sprintf("%s %s auto=%v", e.Step, e.Phase, e.Auto))
	}
	want := []string{"enable started auto=false", "enable failed auto=false", "disable started auto=true", "disable finished auto=true"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("journal:\ngot  %v\nwant %v", got, want)
	}
	if !r.fleet.healthy(0) {
		t.Errorf("n1 not healthy after the rollback:\n%s", r.fleet.log(0))
	}
	r.requireFlags(ctx, false, false, false)
	if _, on := r.state().EnabledAt("n1"); on {
		t.Error("journal says n1 is enabled after its rollback")
	}
}

// setCommand replaces the enable or disable command of the rig's plan.
func setCommand(t *testing.T, r *rig, key, command string) {
	t.Helper()
	b, err := os.ReadFile(r.planPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "commands:\n", fmt.Sprintf("commands:\n  %s: %q\n", key, command), 1)
	if err := os.WriteFile(r.planPath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A changed host key is refused, with the offered fingerprint, before
// anything is journalled or run; so is an unreachable sshd (exit 3).
func TestE2ESSHRefusals(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	envBefore, _ := os.ReadFile(r.fleet.envFile(0))

	newKey := r.ssh.RotateHostKey()
	res := r.advance(ctx, 3, "does not match known_hosts")
	if fp := ssh.FingerprintSHA256(newKey); !strings.Contains(res.stderr, fp) {
		t.Errorf("refusal does not show the offered fingerprint %s:\n%v", fp, res)
	}
	if j := r.journal(); j != nil {
		t.Errorf("journal written despite the refused host key:\n%s", j)
	}
	if env, _ := os.ReadFile(r.fleet.envFile(0)); !bytes.Equal(env, envBefore) {
		t.Errorf("env file changed despite the refused host key: %q", env)
	}

	r.ssh.Stop()
	res = r.advance(ctx, 3, "connection refused")
	if j := r.journal(); j != nil {
		t.Errorf("journal written with sshd down:\n%s", j)
	}
	r.requireFlags(ctx, false, false, false)
}

// With sshd down, a rollback changes nothing either: the journal stays byte
// for byte what it was.
func TestE2ERollbackSSHDown(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	r.advance(ctx, 0, "enabled n1")
	before := r.journal()
	r.ssh.Stop()
	res := r.lanectl(ctx, "rollback", "--replica", "n1")
	if res.code != 3 || !strings.Contains(res.stderr, "connection refused") {
		t.Fatalf("rollback with sshd down: %v; want exit 3, connection refused", res)
	}
	if after := r.journal(); !bytes.Equal(before, after) {
		t.Errorf("journal changed:\nbefore %s\nafter  %s", before, after)
	}
	r.requireFlags(ctx, true, false, false)
}

func TestE2ERollback(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	r.advance(ctx, 0, "enabled n1")
	r.requireFlags(ctx, true, false, false)

	res := r.lanectl(ctx, "rollback", "--replica", "n1")
	if res.code != 0 || !strings.Contains(res.stdout, "rolled back n1: flag off, verified") {
		t.Fatalf("rollback: %v", res)
	}
	r.requireFlags(ctx, false, false, false)
	if _, on := r.state().EnabledAt("n1"); on {
		t.Error("journal still says n1 is on")
	}

	res = r.lanectl(ctx, "rollback", "--all")
	if res.code != 0 || !strings.Contains(res.stdout, "already off, verified: n3, n2, n1") {
		t.Fatalf("rollback --all: %v", res)
	}
	for _, bad := range [][]string{{"rollback"}, {"rollback", "--all", "--replica", "n1"}} {
		if res := r.lanectl(ctx, bad...); res.code != 3 || !strings.Contains(res.stderr, "give --replica NAME") {
			t.Errorf("lanectl %v: %v; want a usage error", bad, res)
		}
	}
	if res := r.lanectl(ctx, "rollback", "--replica", "n9"); res.code != 3 || !strings.Contains(res.stderr, `unknown replica "n9"`) {
		t.Errorf("rollback of an unknown replica: %v", res)
	}
}

// slowEnable makes the enable command take a few seconds after it has set
// the flag, so a run can be caught in the middle.
func slowEnable(t *testing.T, r *rig) {
	setCommand(t, r, "enable", defaultEnableCommand+" && "+r.restartCommand()+" && sleep 3")
}

// SIGKILL in the middle of advance, at two points of the enable step: the
// re-run finishes the step and the journal ends consistent. If the replica
// already shows the flag, the re-run verifies it instead of running the
// command again; if not, it safely runs the command again.
func TestE2ESIGKILLMidAdvance(t *testing.T) {
	tests := []struct {
		name string
		// enable is the enable command; it sleeps where the kill lands.
		enable func(r *rig) string
		// killWhen is polled; advance is killed once it holds.
		killWhen func(r *rig) bool
		wantOut  string
	}{
		{
			name:   "env file rewritten and replica not yet restarted",
			enable: func(r *rig) string { return defaultEnableCommand + " && sleep 3 && " + r.restartCommand() },
			killWhen: func(r *rig) bool {
				env, _ := os.ReadFile(r.fleet.envFile(0))
				return bytes.Contains(env, []byte("ELASTICKV_RAFT_DISPATCHER_LANES=1"))
			},
			wantOut: "n1: enable over ssh",
		},
		{
			name:   "replica restarted with the flag and not yet verified",
			enable: func(r *rig) string { return defaultEnableCommand + " && " + r.restartCommand() + " && sleep 3" },
			killWhen: func(r *rig) bool {
				on, err := r.fleet.lanesEnabled(context.Background(), 0)
				return err == nil && on
			},
			wantOut: "n1: already enabled",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, rigOptions{noProm: true})
			setCommand(t, r, "enable", tt.enable(r))
			ctx := t.Context()
			cmd := r.command(ctx, "advance")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			promtest.Eventually(t, 20*time.Second, "the kill point", func() bool {
				select {
				case err := <-exited:
					t.Fatalf("advance ended before the kill point: %v\n%s", err, out.String())
				default:
				}
				return tt.killWhen(r)
			})
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-exited
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("advance ended with %v, want killed by SIGKILL", err)
			}
			if p := r.state().Pending(); len(p) != 1 || p[0].Step != StepEnable {
				t.Fatalf("after SIGKILL: pending %v, want the enable of n1", p)
			}

			res := r.advance(ctx, 0, "finished the interrupted step on n1")
			if !strings.Contains(res.stdout, tt.wantOut) {
				t.Errorf("re-run output lacks %q: %v", tt.wantOut, res)
			}
			st := r.state()
			if p := st.Pending(); len(p) != 0 {
				t.Errorf("still pending after the re-run: %v", p)
			}
			if _, on := st.EnabledAt("n1"); !on {
				t.Error("journal does not say n1 is on")
			}
			r.requireFlags(ctx, true, false, false)
			// The next advance needs a soak judgement now, not another enable.
			if next := r.lanectl(ctx, "advance", "--dry-run"); !strings.Contains(next.stdout, "1. judge the soak of n1") {
				t.Errorf("dry run after the re-run: %v", next)
			}
		})
	}
}

// Two advances at once: one holds the lock and enables, the other refuses
// with exit 1 and names the holder.
func TestE2EConcurrentAdvance(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	slowEnable(t, r)
	ctx := t.Context()
	results := make(chan cliResult, 2)
	for range 2 {
		go func() { results <- r.lanectl(ctx, "advance") }()
	}
	a, b := <-results, <-results
	if a.code != 0 {
		a, b = b, a
	}
	if a.code != 0 || !strings.Contains(a.stdout, "enabled n1") {
		t.Errorf("winner: %v; want exit 0 having enabled n1", a)
	}
	if b.code != 1 || !strings.Contains(b.stderr, "another lanectl run holds the rollout lock") {
		t.Errorf("loser: %v; want exit 1 refusing on the lock", b)
	}
	var enables int
	for _, e := range r.state().Events {
		if e.Step == StepEnable && e.Phase == PhaseStarted {
			enables++
		}
	}
	if enables != 1 {
		t.Errorf("journal has %d enable steps, want 1", enables)
	}
}

// status shows a replica whose metrics disagree with the journal loudly,
// and exits 3 when the metrics source is unreachable, after the table.
func TestE2EStatusMismatch(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	r.advance(ctx, 0, "enabled n1")
	// Someone takes the flag off n1 behind lanectl's back.
	if err := os.WriteFile(r.fleet.envFile(0), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := exec.CommandContext(ctx, "bash", "-c", strings.ReplaceAll(r.restartCommand(), "{{.Replica.Name}}", "n1")).Run(); err != nil {
		t.Fatal(err)
	}
	promtest.Eventually(t, 20*time.Second, "n1 to come back without the flag", func() bool {
		on, err := r.fleet.lanesEnabled(context.Background(), 0)
		return err == nil && !on && r.fleet.healthy(0)
	})
	res := r.lanectl(ctx, "status")
	for _, want := range []string{"| n1      | staging | on MISMATCH | off", "WARNING: n1: the journal says the flag is on but the replica shows off", "next: n2"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("status lacks %q:\n%v", want, res)
		}
	}
	if res.code != 3 || !strings.Contains(res.stderr, "drops unknown") {
		t.Errorf("status with Prometheus unreachable: %v; want exit 3 after the table", res)
	}
}

// A canary whose soak fails on real heartbeat-lane drops: its enable command
// also restarts it with the replica's --inject-drops heartbeat:5, which
// drops every fifth heartbeat-lane message through the dispatcher's ordinary
// drop path. advance refuses with exit 1 and changes no replica; status
// shows the drops on the heartbeat lane.
func TestE2EHeartbeatDropsCanaryRefused(t *testing.T) {
	r := newRig(t, rigOptions{
		window:  30 * time.Second,
		stages:  "  - {name: canary}\n  - {name: fleet}\n",
		stageOf: func(i, _ int) string { return map[bool]string{true: "canary", false: "fleet"}[i == 0] },
	})
	setCommand(t, r, "enable", defaultEnableCommand+` && echo SUPERVISE_EXTRA_ARGS=--inject-drops=heartbeat:5 >> {{.EnvFile}} && `+r.restartCommand())
	ctx := t.Context()
	r.advance(ctx, 0, "enabled n1")

	promtest.Eventually(t, 20*time.Second, "heartbeat-lane drops on n1", func() bool {
		metrics, err := http.Get(r.fleet.urls[0] + "/metrics")
		if err != nil {
			return false
		}
		defer metrics.Body.Close()
		body, _ := io.ReadAll(metrics.Body)
		return regexp.MustCompile(`elastickv_raft_dispatch_dropped_total\{lane="heartbeat",[^}]*\} [1-9]`).Match(body)
	})
	// A soak judges a window of at least a second: wait for some of it to
	// pass, and for Prometheus to hold the drops.
	_, since := r.state().LastBatch()
	seen := time.Now()
	if least := since.Add(2 * time.Second); seen.Before(least) {
		seen = least
	}
	time.Sleep(time.Until(seen))
	r.waitScrapedPast(seen)

	before := r.state()
	res := r.advance(ctx, 1, "heartbeat_drops")
	for _, want := range []string{"soak failed: n1: heartbeat_drops: canary n1:", "lanectl rollback --replica n1"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("advance stderr lacks %q:\n%v", want, res)
		}
	}
	if got, want := len(r.state().Events), len(before.Events)+1; got != want {
		t.Errorf("journal has %d events, want %d (only the soak verdict added)", got, want)
	}
	r.requireFlags(ctx, true, false, false)

	st := r.lanectl(ctx, "status", "-o", "json")
	var doc struct {
		Replicas []struct {
			Name  string
			Drops map[string]float64
		}
	}
	if err := json.Unmarshal([]byte(st.stdout), &doc); err != nil || st.code != 0 {
		t.Fatalf("status: %v (%v)", st, err)
	}
	if hb := doc.Replicas[0].Drops["heartbeat"]; hb < 1 {
		t.Errorf("status of n1: drops %v, want heartbeat-lane drops", doc.Replicas[0].Drops)
	}
}
