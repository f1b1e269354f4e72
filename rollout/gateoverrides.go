package rollout

import (
	"slices"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/targets"
)

// checkGateOverrides applies each soak.gates entry to the target's gate set
// on its own, so a bad one is reported at its own line.
func checkGateOverrides(loc locator, t targets.Target, o gates.Overrides) []error {
	var errs []error
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := t.Gates().With(gates.Overrides{n: o[n]}); err != nil {
			errs = append(errs, loc.errorf([]any{"soak", "gates", n}, "soak.gates.%s: %v", n, err))
		}
	}
	return errs
}

// GateSet is the target's gate set with the plan's overrides applied.
func (p *Plan) GateSet() (gates.Set, error) {
	return p.Target.Gates().With(p.Soak.Gates)
}
