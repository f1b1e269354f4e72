package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// advance runs 'lanectl advance' and expects code; on exit 2 it checks
// the time left is reported.
func (r *rig) advance(ctx context.Context, wantCode int, wantOut string) cliResult {
	r.t.Helper()
	res := r.lanectl(ctx, "advance")
	if res.code != wantCode || !strings.Contains(res.stdout+res.stderr, wantOut) {
		r.t.Fatalf("lanectl advance: got %v\nwant exit %d and output containing %q", res, wantCode, wantOut)
	}
	return res
}

// waitSoak sleeps until the soak of the batch enabled last is over, then
// waits until Prometheus has scraped past its end.
func (r *rig) waitSoak(window time.Duration) {
	r.t.Helper()
	_, since := r.state().LastBatch()
	if since.IsZero() {
		r.t.Fatal("no enabled batch to wait for")
	}
	end := since.Add(window)
	time.Sleep(time.Until(end))
	r.waitScrapedPast(end)
}

func (r *rig) put(key string) error {
	c := http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest(http.MethodPut, r.fleet.urls[0]+"/kv/"+key, strings.NewReader("v"))
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT %s: %d %s", key, resp.StatusCode, body)
	}
	return nil
}

// startLoad runs 'lanectl load' against the fleet until stop is called,
// which returns its JSON summary.
func (r *rig) startLoad() (stop func() map[string]any) {
	r.t.Helper()
	cmd := exec.Command(lanectlBinary(r.t), "load", "--targets", strings.Join(r.fleet.urls, ","),
		"--rate", "20", "--value-size", "256", "--keys", "100", "--progress", "1h", "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	stop = func() map[string]any {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := <-done
		var sum map[string]any
		if jerr := json.Unmarshal(stdout.Bytes(), &sum); jerr != nil {
			r.t.Errorf("lanectl load: %v, summary %q: %v\nstderr: %s", err, stdout.String(), jerr, stderr.String())
		}
		return sum
	}
	r.t.Cleanup(func() { stop() })
	return stop
}

func (r *rig) requireFlags(ctx context.Context, want ...bool) {
	r.t.Helper()
	for i, w := range want {
		got, err := r.fleet.lanesEnabled(ctx, i)
		if err != nil || got != w {
			r.t.Errorf("%s: lanes_enabled = %v (%v), want %v", r.fleet.names[i], got, err, w)
		}
	}
}

// The whole plan: staging -> canary -> fleet over three replicas with short
// soaks, under write load, ending with every replica on four-lane; on the
// way, an advance with sshd down changes nothing.
func TestE2EFullRollout(t *testing.T) {
	const window = 8 * time.Second
	r := newRig(t, rigOptions{window: window})
	ctx := t.Context()
	stopLoad := r.startLoad()

	res := r.lanectl(ctx, "advance", "--dry-run")
	if res.code != 0 || !strings.Contains(res.stdout, "1. enable n1 (stage staging)") || !strings.Contains(res.stdout, "5. enable n3 (stage fleet)") || !strings.Contains(res.stdout, "7. rollout complete") {
		t.Fatalf("dry run: %v", res)
	}
	if j := r.journal(); j != nil {
		t.Fatalf("dry run wrote the journal: %s", j)
	}

	steps := []struct {
		judge bool
		// sshDown first tries the step with sshd stopped.
		sshDown bool
		wantOut string
		flags   []bool
	}{
		{false, false, "enabled n1", []bool{true, false, false}},
		{true, true, "enabled n2", []bool{true, true, false}},
		{true, false, "enabled n3", []bool{true, true, true}},
		{true, false, "rollout complete", []bool{true, true, true}},
	}
	for i, s := range steps {
		if s.judge {
			// Before the window is over: exit 2 with the time left.
			r.advance(ctx, 2, "from now")
			r.waitSoak(window)
		}
		if s.sshDown {
			// The soak passed and the next replica is due, but sshd is
			// down: exit 3, and the journal stays byte for byte what it
			// was (the passing verdict is not recorded either).
			before := r.journal()
			r.ssh.Stop()
			res := r.advance(ctx, 3, "connection refused")
			if !strings.Contains(res.stderr, "refusing to enable n2") {
				t.Errorf("advance with sshd down: %v; want it to refuse to enable n2", res)
			}
			if after := r.journal(); !bytes.Equal(before, after) {
				t.Errorf("journal changed with sshd down:\nbefore %s\nafter  %s", before, after)
			}
			r.ssh.Restart()
		}
		out := r.advance(ctx, 0, s.wantOut)
		if s.judge && !strings.Contains(out.stdout, fmt.Sprintf("soak of n%d passed: ", i)) {
			t.Errorf("step %d: want the passing soak shown, got %v", i, out)
		}
		r.requireFlags(ctx, s.flags...)
		r.fleet.waitHealthy(20 * time.Second)
		if err := r.put(fmt.Sprintf("after-step-%d", i)); err != nil {
			t.Errorf("step %d: cluster not writable: %v", i, err)
		}
	}
	sum := stopLoad()
	if ok, _ := sum["writes_ok"].(float64); ok < 50 {
		t.Errorf("load summary %v: want at least 50 writes ok", sum)
	}
	t.Logf("load during the rollout: %v", sum)

	st := r.lanectl(ctx, "status", "-o", "json")
	if st.code != 0 {
		t.Fatalf("status: %v", st)
	}
	var doc struct {
		Replicas []struct {
			Name, Flag, Metrics string
			Mismatch            bool
			LastVerdict         *struct{ Verdict string } `json:"last_verdict"`
			Drops               map[string]float64
		}
	}
	if err := json.Unmarshal([]byte(st.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	var verdicts []string
	for _, e := range r.state().Events {
		if e.Step == StepSoak {
			verdicts = append(verdicts, strings.Join(e.Replicas, ",")+"="+e.Verdict)
		}
	}
	if got, want := strings.Join(verdicts, " "), "n1=pass n2=pass n3=pass"; got != want {
		t.Errorf("soak verdicts journalled: %q, want %q", got, want)
	}
	for _, rep := range doc.Replicas {
		if rep.Flag != "on" || rep.Metrics != "on" || rep.Mismatch || rep.LastVerdict == nil || rep.LastVerdict.Verdict != "pass" {
			t.Errorf("status of %s: %+v, want flag and metrics on with a pass", rep.Name, rep)
		}
		// Four-lane drops by lane over the soak so far; none on heartbeats.
		if hb, ok := rep.Drops["heartbeat"]; !ok || hb != 0 {
			t.Errorf("status of %s: drops %v, want a heartbeat lane with 0", rep.Name, rep.Drops)
		}
	}
}
