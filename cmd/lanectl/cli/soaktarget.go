package cli

import (
	"fmt"
	"io"

	"github.com/lanectl/lanectl/rollout"
	"github.com/lanectl/lanectl/targets"
)

// soakTarget is the target a soak judges: the plan's, which --target may
// name again but not contradict, else --target, else the default.
func soakTarget(opts *SoakOptions, plan *rollout.Plan) (targets.Target, error) {
	if plan != nil {
		if opts.Target != "" && opts.Target != plan.Target.Name {
			return targets.Target{}, fmt.Errorf("--target %s contradicts plan %s, whose target is %s", opts.Target, plan.Path, plan.Target.Name)
		}
		return plan.Target, nil
	}
	name := opts.Target
	if name == "" {
		name = targets.Default
	}
	t, err := targets.Lookup(name)
	if err != nil {
		return targets.Target{}, fmt.Errorf("--target: %w", err)
	}
	return t, nil
}

// writeBlind says what the target's metrics cannot show, under a gate
// table, so the table never implies a check it did not make.
func writeBlind(w io.Writer, t targets.Target) {
	if len(t.Blind) == 0 {
		return
	}
	fmt.Fprintf(w, "\nwhat the %s target cannot see:\n", t.Name)
	for _, b := range t.Blind {
		fmt.Fprintf(w, "  - %s\n", b)
	}
}
