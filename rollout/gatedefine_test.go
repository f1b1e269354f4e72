package rollout

import (
	"testing"

	"github.com/lanectl/lanectl/gates"
)

// TestPlanDefinesAGate loads a plan whose soak.gates defines a gate the
// target does not have, next to an override of one it has.
func TestPlanDefinesAGate(t *testing.T) {
	p, err := LoadPlan("testdata/plans/gate-define.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := p.GateSet()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(set), len(p.Target.Gates())+1; got != want {
		t.Fatalf("gates: got %d, want the target's %d and the defined one", got, want-1)
	}
	g, ok := set.Lookup("proposals_failed")
	if !ok {
		t.Fatalf("gates %v: the defined gate is missing", set.Names())
	}
	if g.Kind != gates.KindCount || g.Scope != gates.ScopeCanary || g.Violation != gates.Fail || g.What != "failed proposals" || *g.Max != 0 {
		t.Errorf("defined gate: got %+v", g)
	}
	if sq, _ := set.Lookup("step_queue_full"); *sq.Factor != 2 {
		t.Errorf("step_queue_full factor: got %v, want the plan's 2", *sq.Factor)
	}
}
