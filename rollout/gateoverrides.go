package rollout

import (
	"slices"

	"github.com/lanectl/lanectl/gates"
)

// checkGateOverrides applies each soak.gates entry to the default gate set
// on its own, so a bad one is reported at its own line.
func checkGateOverrides(loc locator, o gates.Overrides) []error {
	var errs []error
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := gates.DefaultSet().With(gates.Overrides{n: o[n]}); err != nil {
			errs = append(errs, loc.errorf([]any{"soak", "gates", n}, "soak.gates.%s: %v", n, err))
		}
	}
	return errs
}

// GateSet is the default gate set with the plan's overrides applied.
func (p *Plan) GateSet() (gates.Set, error) {
	return gates.DefaultSet().With(p.Soak.Gates)
}
