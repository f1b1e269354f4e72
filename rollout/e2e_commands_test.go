package rollout

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
)

// A rollback runs the disable command even on a replica whose /metrics and
// journal both say the flag is off: an enable that rewrote the env file and
// then timed out before the restart leaves the flag in the file, where the
// next restart would turn it on without a word.
func TestE2ERollbackRunsDisableOnReplicaShowingOff(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	const flagLine = "ELASTICKV_RAFT_DISPATCHER_LANES=1"
	// The half-done enable: the file has the flag, the process does not.
	if err := os.WriteFile(r.fleet.envFile(1), []byte(flagLine+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.requireFlags(ctx, false, false, false)

	res := r.lanectl(ctx, "rollback", "--replica", "n2")
	if res.code != 0 || !strings.Contains(res.stdout, "n2") {
		t.Fatalf("rollback: %v", res)
	}
	if !strings.Contains(res.stdout, "n2: flag already off") || !strings.Contains(res.stdout, "running the disable command anyway") || !strings.Contains(res.stdout, "n2: disable over ssh") {
		t.Errorf("the action log does not say the disable command ran on n2 although it showed off:\n%v", res)
	}
	if env, _ := os.ReadFile(r.fleet.envFile(1)); bytes.Contains(env, []byte(flagLine)) {
		t.Errorf("n2's env file still has the flag after the rollback: %q", env)
	}
	evs := r.state().Events
	if len(evs) != 2 || evs[0].Step != StepDisable || evs[0].Phase != PhaseStarted || evs[1].Phase != PhaseFinished ||
		!strings.Contains(evs[1].Reason, "ran the disable command on n2") {
		t.Errorf("journal: got %+v, want a disable of n2 started and finished, saying the command ran", evs)
	}

	// The next restart, whoever causes it, keeps the flag off.
	before := r.fleet.childPID(1)
	if err := exec.CommandContext(ctx, "bash", "-c", strings.ReplaceAll(r.restartCommand(), "{{.Replica.Name}}", "n2")).Run(); err != nil {
		t.Fatal(err)
	}
	promtest.Eventually(t, 20*time.Second, "n2 to restart and be healthy", func() bool {
		return r.fleet.childPID(1) != before && r.fleet.healthy(1)
	})
	on, err := r.fleet.lanesEnabled(context.Background(), 1)
	if err != nil || on {
		t.Errorf("n2 after a restart: lanes_enabled = %v (%v), want off", on, err)
	}
}

// An enable command that outlives commands.timeout is killed on the replica,
// not only abandoned by lanectl: advance fails with the timeout, rolls the
// replica back, and the command never gets to write "late".
func TestE2EEnableTimeoutKillsRemoteCommand(t *testing.T) {
	r := newRig(t, rigOptions{noProm: true})
	ctx := t.Context()
	file := filepath.Join(t.TempDir(), "late.txt")
	setCommand(t, r, "enable", "sleep 30; echo late >> "+file)
	plan, err := os.ReadFile(r.planPath)
	if err != nil {
		t.Fatal(err)
	}
	shorter := strings.Replace(string(plan), "  timeout: 30s\n", "  timeout: 2s\n", 1)
	if shorter == string(plan) {
		t.Fatal("the rig's plan has no commands.timeout of 30s to shorten")
	}
	if err := os.WriteFile(r.planPath, []byte(shorter), 0o644); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	res := r.advance(ctx, 1, "timed out after")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("advance took %v with a 2s command timeout", took)
	}
	if !strings.Contains(res.stdout, "disabled n1: verified") {
		t.Errorf("advance did not roll n1 back:\n%v", res)
	}
	var got []string
	for _, e := range r.state().Events {
		got = append(got, e.Step+" "+e.Phase)
		if e.Step == StepEnable && e.Phase == PhaseFailed && !strings.Contains(e.Reason, "timed out") {
			t.Errorf("failed enable's reason %q does not say it timed out", e.Reason)
		}
	}
	if want := "enable started, enable failed, disable started, disable finished"; strings.Join(got, ", ") != want {
		t.Errorf("journal: got %s, want %s", strings.Join(got, ", "), want)
	}
	// Its shell is the only process naming the file; once it is gone,
	// "late" can never be written.
	waitGone(t, "the timed-out enable command to be gone from the replica", "-f", file)
	if data, _ := os.ReadFile(file); len(data) > 0 {
		t.Errorf("the timed-out enable command went on and wrote %q", data)
	}
	r.requireFlags(ctx, false, false, false)
}
