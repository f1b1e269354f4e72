package rollout

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/targets"
)

// testPlan is a plan for five replicas: one staging, one canary, three in a
// fleet stage of max_parallel 2, with its journal in a temporary directory.
func testPlan(t *testing.T) *Plan {
	t.Helper()
	p := &Plan{
		Target:   targets.Lanectl(),
		Flag:     Flag{Name: "ELASTICKV_RAFT_DISPATCHER_LANES", Value: "1"},
		Soak:     SoakConfig{Window: time.Hour, Interval: time.Minute},
		Commands: Commands{Enable: "enable {{.Replica.Name}}", Disable: "disable {{.Replica.Name}}", EnvFile: "/etc/default/elastickv"},
		Stages:   []Stage{{"staging", 1}, {"canary", 1}, {"fleet", 2}},
		Replicas: []Replica{
			{Name: "s1", Stage: "staging", Selector: `node_id="s1"`},
			{Name: "c1", Stage: "canary", Selector: `node_id="c1"`},
			{Name: "f1", Stage: "fleet", Selector: `node_id="f1"`},
			{Name: "f2", Stage: "fleet", Selector: `node_id="f2"`},
			{Name: "f3", Stage: "fleet", Selector: `node_id="f3"`},
		},
		ExpectSyncMode: "sync",
		StatePath:      filepath.Join(t.TempDir(), "state.json"),
	}
	return p
}

// enabled journals a finished enable for each batch in turn.
func enabled(t *testing.T, p *Plan, batches ...[]string) *State {
	t.Helper()
	s, err := LoadState(p.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		st, err := s.Start(StepEnable, b, at(10*i), false)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.End(st, PhaseFinished, at(10*i+1), ""); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestNextBatch(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]string
		want    string
	}{
		{"nothing enabled: first stage", nil, "s1"},
		{"staging done: canary", [][]string{{"s1"}}, "c1"},
		{"fleet goes max_parallel at a time", [][]string{{"s1"}, {"c1"}}, "f1,f2"},
		{"the rest of the fleet", [][]string{{"s1"}, {"c1"}, {"f1", "f2"}}, "f3"},
		{"all enabled", [][]string{{"s1"}, {"c1"}, {"f1", "f2"}, {"f3"}}, ""},
		{"a replica rolled back earlier comes first again", [][]string{{"c1"}}, "s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPlan(t)
			d := &Driver{Plan: p}
			got := strings.Join(names(d.nextBatch(enabled(t, p, tt.batches...))), ",")
			if got != tt.want {
				t.Errorf("nextBatch = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSoakRequest(t *testing.T) {
	p := testPlan(t)
	d := &Driver{Plan: p, Now: func() time.Time { return at(100) }}
	st := enabled(t, p, []string{"s1"}, []string{"c1"})
	set, req, noBaseline, err := d.SoakRequest(st, []string{"c1"}, at(11))
	if err != nil {
		t.Fatal(err)
	}
	targets := func(ts []gates.Target) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name+"="+t.Selector)
		}
		return strings.Join(out, " ")
	}
	if got, want := targets(req.Canaries), `c1=node_id="c1"`; got != want {
		t.Errorf("canaries = %s, want %s", got, want)
	}
	// s1 has the flag: it is neither canary nor baseline.
	if got, want := targets(req.Baselines), `f1=node_id="f1" f2=node_id="f2" f3=node_id="f3"`; got != want {
		t.Errorf("baselines = %s, want %s", got, want)
	}
	if !req.Window.Start.Equal(at(11)) || !req.Window.End.Equal(at(71)) {
		t.Errorf("window = %v, want %v .. %v", req.Window, at(11), at(71))
	}
	if req.PresenceMetric != p.Target.PresenceMetric {
		t.Errorf("presence metric = %q, want the target's %q", req.PresenceMetric, p.Target.PresenceMetric)
	}
	if noBaseline || len(set) != len(p.Target.Gates()) {
		t.Errorf("noBaseline = %v with %d gates, want false with the default set", noBaseline, len(set))
	}

	// The last batch: nobody is left without the flag.
	st = enabled(t, p, []string{"s1"}, []string{"c1"}, []string{"f1", "f2"}, []string{"f3"})
	set, req, noBaseline, err = d.SoakRequest(st, []string{"f3"}, at(31))
	if err != nil {
		t.Fatal(err)
	}
	if !noBaseline || len(req.Baselines) != 0 {
		t.Fatalf("noBaseline = %v, baselines %v; want true and none", noBaseline, req.Baselines)
	}
	for _, g := range set {
		if g.Factor != nil {
			t.Errorf("gate %s keeps a relative limit with no baseline to compare with", g.Name)
		}
		def, _ := p.Target.Gates().Lookup(g.Name)
		onlyRelative := def.Factor != nil && def.Min == nil && def.Max == nil && def.BaselineMin == nil && def.BaselineMax == nil
		if g.Disabled != onlyRelative {
			t.Errorf("gate %s: disabled = %v, want %v", g.Name, g.Disabled, onlyRelative)
		}
	}
}

func TestDryRunResumesFirst(t *testing.T) {
	p := testPlan(t)
	d := &Driver{Plan: p, Now: func() time.Time { return at(100) }}
	s := enabled(t, p, []string{"s1"})
	if _, err := s.Start(StepEnable, []string{"c1"}, at(50), false); err != nil {
		t.Fatal(err)
	}
	steps, err := d.DryRun()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range steps {
		got = append(got, st.Kind+":"+st.Step+":"+strings.Join(names(st.Replicas), ","))
	}
	want := []string{"resume:enable:c1", "enable::f1,f2", "soak::f1,f2", "enable::f3", "soak::f3", "complete::"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("steps:\ngot  %v\nwant %v", got, want)
	}
	if cmd := steps[0].Commands["c1"]; cmd != "enable c1" {
		t.Errorf("resume command = %q, want %q", cmd, "enable c1")
	}
	if rb := steps[1].Rollbacks["f2"]; rb != "disable f2" {
		t.Errorf("rollback command = %q, want %q", rb, "disable f2")
	}
}

func TestJournalNamingUnknownReplicaRefused(t *testing.T) {
	p := testPlan(t)
	enabled(t, p, []string{"gone"})
	d := &Driver{Plan: p, Now: time.Now, Log: io.Discard}
	_, err := d.Advance(t.Context())
	if !errors.Is(err, ErrUnknownReplica) || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("got %v, want ErrUnknownReplica naming gone", err)
	}
}

// The prober against real replicas: the flag as their /metrics show it,
// health, and Verify's timeout naming what is wrong.
func TestProberAgainstReplicas(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Env: []nodetest.Env{nodetest.Legacy(), nodetest.FourLane(), nodetest.Legacy()}})
	c.WaitLeader(10 * time.Second)
	reps := make([]Replica, 3)
	for i := range reps {
		reps[i] = Replica{Name: c.Name(i), HTTP: c.URL(i), Selector: fmt.Sprintf("node_id=%q", c.Name(i))}
	}
	pr := lanectlProber(reps)
	ctx := t.Context()
	if _, err := pr.Verify(ctx, reps[:1], false, 10*time.Second, 50*time.Millisecond, 2, time.Now); err != nil {
		t.Errorf("legacy n1 verified off: %v", err)
	}
	if _, err := pr.Verify(ctx, reps[1:2], true, 10*time.Second, 50*time.Millisecond, 2, time.Now); err != nil {
		t.Errorf("four-lane n2 verified on: %v", err)
	}
	_, err := pr.Verify(ctx, reps[:1], true, time.Second, 50*time.Millisecond, 2, time.Now)
	if !errors.Is(err, ErrVerifyTimeout) || !strings.Contains(err.Error(), `n1: ELASTICKV_RAFT_DISPATCHER_LANES runs "false" (`+targets.LanectlLanesEnabled+`{node_id="n1"} == 0 holds), want "true"`) {
		t.Errorf("legacy n1 verified on: got %v, want a timeout saying the gauge is 0", err)
	}

	c.Stop(2)
	ok, why := pr.Probe(ctx, reps[2], time.Now()).Check(false)
	if ok || !strings.Contains(why, "connection refused") {
		t.Errorf("stopped n3: Check = %v, %q; want not ok, connection refused", ok, why)
	}
	c.Restart(2, nodetest.FourLane())
	if _, err := pr.Verify(ctx, reps[2:], true, 10*time.Second, 50*time.Millisecond, 2, time.Now); err != nil {
		t.Errorf("n3 restarted four-lane: %v", err)
	}
}

// lanectlProber probes rs as a plan of the lanectl target rolling out the
// lanes flag would.
func lanectlProber(rs []Replica) *Prober {
	t := targets.Lanectl()
	proof, _ := t.FlagProof("ELASTICKV_RAFT_DISPATCHER_LANES")
	p := &Plan{
		Target:   t,
		Flag:     Flag{Name: "ELASTICKV_RAFT_DISPATCHER_LANES", Value: "1"},
		Replicas: rs,
		Verify:   VerifyConfig{HTTP: t.Verify.HTTP, Metrics: t.Verify.Metrics, Status: t.Verify.Status, FlagProof: proof},
	}
	return &Prober{Plan: p, Timeout: 2 * time.Second}
}
