package rollout

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/targets"
)

// Every built-in target's verify conditions and metric flag proofs render
// and parse for a replica, so a target cannot ship PromQL that fails only
// when a rollout reaches it.
func TestTargetConditionsParse(t *testing.T) {
	for _, name := range targets.Names() {
		tg, err := targets.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range tg.Verify.Metrics {
			if err := checkCondition(m, `node_id="n1"`, ""); err != nil {
				t.Errorf("%s: verify condition %q: %v", name, m, err)
			}
		}
		for _, p := range tg.FlagProofs {
			if !p.FromMetrics() {
				continue
			}
			for _, v := range []string{"1", ""} {
				running, _ := p.Running(v)
				if err := checkCondition(p.Holds, `node_id="n1"`, running); err != nil {
					t.Errorf("%s: flag proof of %s for %q: %v", name, p.Flag, running, err)
				}
			}
		}
	}
}

// The flag gate's evidence for a target whose metrics cannot show the
// flag: the read output journalled at verification, and a fresh read.
func TestFlagEvidence(t *testing.T) {
	urls := []string{
		serveExposition(t, capture(t, "n2-fourlane-n1")),
		serveExposition(t, capture(t, "n2-fourlane-n2")),
		serveExposition(t, capture(t, "n2-fourlane-n3")),
	}
	p := elastickvPlan(t, urls)
	dir := t.TempDir()
	p.Commands.Read = "cat " + filepath.Join(dir, "{{.Replica.Name}}.flag") + " 2>/dev/null || true"
	p.StatePath = filepath.Join(dir, "state.json")
	if err := os.WriteFile(filepath.Join(dir, "n2.flag"), []byte(" 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runner := LocalRunner{Timeout: 5 * time.Second}
	d := &Driver{Plan: p, Runner: runner, Prober: Prober{Plan: p, Runner: runner}, Now: time.Now, Log: io.Discard}
	defer d.Prober.CloseIdleConnections()
	st, err := LoadState(p.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	batch := d.replicas([]string{"n2"})
	started, err := st.Start(StepEnable, []string{"n2"}, time.Now(), false)
	if err != nil {
		t.Fatal(err)
	}
	verified, err := d.Prober.Verify(t.Context(), batch, true, 5*time.Second, 50*time.Millisecond, 1, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := endVerified(st, started, time.Now(), verified); err != nil {
		t.Fatal(err)
	}
	// The journal is what a later run reads.
	if st, err = LoadState(p.StatePath); err != nil {
		t.Fatal(err)
	}
	ev := d.FlagEvidence(t.Context(), st, []string{"n2", "n1"})
	if len(ev) != 2 {
		t.Fatalf("got %d evidences, want 2", len(ev))
	}
	n2, n1 := ev[0], ev[1]
	if !n2.Enabled || !n2.HasAtVerify || n2.AtVerify != "1" || n2.Value() != 1 {
		t.Errorf("n2: %+v (value %v); want on since the enable, read \"1\" at verify and now", n2, n2.Value())
	}
	if !strings.Contains(n2.Reason(), "decided from the journal and the read command") || !strings.Contains(n2.Reason(), `read printed "1" at verify`) {
		t.Errorf("n2 reason %q does not say how it was decided", n2.Reason())
	}
	if n1.Enabled || n1.Value() != 0 {
		t.Errorf("n1: %+v (value %v); want off in the journal and unset now", n1, n1.Value())
	}
	req := gates.Request{Canaries: []gates.Target{{Name: "n2"}}, Baselines: []gates.Target{{Name: "n1"}, {Name: "n3"}}}
	var got []string
	for _, e := range d.SoakFlagEvidence(t.Context(), st, req) {
		got = append(got, fmt.Sprintf("%s=%v", e.Replica, e.Value()))
	}
	if strings.Join(got, " ") != "n2=1 n1=0 n3=0" {
		t.Errorf("soak flag evidence: %v, want n2=1 n1=0 n3=0", got)
	}
	// A read that cannot run is missing data, never a pass.
	p.Commands.Read = "exit 3"
	if v := d.FlagEvidence(t.Context(), st, []string{"n2"})[0].Value(); !math.IsNaN(v) {
		t.Errorf("n2 with a failing read: value %v, want NaN", v)
	}
}
