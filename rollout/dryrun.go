package rollout

import (
	"time"

	"github.com/lanectl/lanectl/gates"
)

// Kinds of planned step.
const (
	PlanResume   = "resume"   // finish an interrupted step
	PlanJudge    = "judge"    // judge the soak of the last batch
	PlanEnable   = "enable"   // enable a batch and verify it
	PlanSoak     = "soak"     // let a batch soak
	PlanComplete = "complete" // nothing left to do
)

// PlannedStep is one step of what the rest of the rollout would do.
type PlannedStep struct {
	Kind     string
	Step     string // PlanResume: the interrupted step (enable or disable)
	Stage    string
	Replicas []Replica
	// Commands and Rollbacks are the exact remote commands by replica name:
	// what enable runs, and what it runs to undo a batch that does not
	// verify.
	Commands  map[string]string
	Rollbacks map[string]string
	// Window is the soak window judged or started; for a future soak only
	// its length is known.
	Window   gates.Window
	Duration time.Duration
}

// DryRun lists every step from the journal's current state to the end of
// the rollout, assuming every soak passes. It reads the journal, takes no
// lock, connects to nothing and changes nothing.
func (d *Driver) DryRun() ([]PlannedStep, error) {
	st, err := LoadJournal(d.Plan, d.Now())
	if err != nil {
		return nil, err
	}
	var steps []PlannedStep
	for _, p := range st.Pending() {
		ps, err := d.plannedCommands(PlannedStep{Kind: PlanResume, Step: p.Step, Replicas: d.replicas(p.Replicas)}, p.Step == StepEnable)
		if err != nil {
			return nil, err
		}
		steps = append(steps, ps)
		if p.Step == StepEnable {
			// Once it verifies, the resumed batch soaks like any other.
			for _, n := range p.Replicas {
				st.Events = append(st.Events, Event{Step: StepEnable, Phase: PhaseFinished, Replicas: []string{n}, Time: d.Now()})
			}
		}
	}
	if batch, since := st.LastBatch(); len(batch) > 0 && len(st.Pending()) == 0 {
		steps = append(steps, PlannedStep{Kind: PlanJudge, Replicas: d.replicas(batch), Window: gates.Window{Start: since, End: since.Add(d.Plan.Soak.Window)}, Duration: d.Plan.Soak.Window})
	}
	// Simulate the rest on a copy of the journal, assuming each step
	// succeeds, to list the batches in order.
	sim := &State{Path: st.Path, Events: append([]Event(nil), st.Events...)}
	for range len(d.Plan.Replicas) + 1 {
		next := d.nextBatch(sim)
		if len(next) == 0 {
			break
		}
		ps, err := d.plannedCommands(PlannedStep{Kind: PlanEnable, Stage: next[0].Stage, Replicas: next}, true)
		if err != nil {
			return nil, err
		}
		steps = append(steps, ps, PlannedStep{Kind: PlanSoak, Stage: next[0].Stage, Replicas: next, Duration: d.Plan.Soak.Window})
		sim.Events = append(sim.Events, Event{Step: StepEnable, Phase: PhaseFinished, Replicas: names(next), Time: d.Now()})
	}
	return append(steps, PlannedStep{Kind: PlanComplete}), nil
}

func (d *Driver) plannedCommands(ps PlannedStep, enable bool) (PlannedStep, error) {
	ps.Commands = map[string]string{}
	ps.Rollbacks = map[string]string{}
	for _, r := range ps.Replicas {
		c, err := d.command(r, enable)
		if err != nil {
			return ps, err
		}
		ps.Commands[r.Name] = c
		if enable {
			rb, err := d.command(r, false)
			if err != nil {
				return ps, err
			}
			ps.Rollbacks[r.Name] = rb
		}
	}
	return ps, nil
}
