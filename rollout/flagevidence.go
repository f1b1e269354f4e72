package rollout

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/targets"
)

// endVerified journals a finished enable with what the read command
// printed on each replica when it verified, the first half of the flag
// evidence of a target whose metrics cannot show the flag.
func endVerified(st *State, started Event, now time.Time, verified map[string]Probe) error {
	reads := map[string]string{}
	for name, pr := range verified {
		if pr.Flag.ReadRan {
			reads[name] = pr.Flag.Read
		}
	}
	e := Event{Of: started.ID, Time: now, Step: started.Step, Phase: PhaseFinished, Replicas: started.Replicas, Auto: started.Auto}
	if len(reads) > 0 {
		e.FlagRead = reads
	}
	_, err := st.Record(e)
	return err
}

// FlagEvidence is how the flag gate is decided where no metric shows the
// flag over a window: from the journal (the flag went on and verified at
// Since, with the read command printing AtVerify) and from the read
// command run again when the soak is judged (Now).
type FlagEvidence struct {
	Replica string
	// Enabled is true when the journal has the flag on, verified at Since.
	Enabled bool
	Since   time.Time
	// AtVerify is what the read command printed when the enable verified;
	// HasAtVerify is false when the journal holds no such record.
	AtVerify    string
	HasAtVerify bool
	// Now is the flag as proven when the soak is judged.
	Now FlagReading
}

// Value is the flag as a gate value: 1 when the replica runs with the
// plan's value now, 0 when it runs as with the flag unset, NaN when that
// is not proven (missing data, never a pass).
func (e FlagEvidence) Value() float64 {
	switch {
	case e.Now.Is(true):
		return 1
	case e.Now.Is(false):
		return 0
	}
	return math.NaN()
}

// Reason says, for the gate table, how the value was decided.
func (e FlagEvidence) Reason() string {
	journal := "journal: flag off"
	if e.Enabled {
		journal = "journal: on since " + e.Since.UTC().Format(time.RFC3339)
		if e.HasAtVerify {
			journal += fmt.Sprintf(", read printed %q at verify", e.AtVerify)
		}
	}
	return "decided from the journal and the read command, not from metrics (" + journal + "; now: " + e.Now.Detail + ")"
}

// FlagEvidence gathers the evidence for each named replica: the journal's
// record and a fresh proof of the flag.
func (d *Driver) FlagEvidence(ctx context.Context, st *State, replicas []string) []FlagEvidence {
	out := make([]FlagEvidence, 0, len(replicas))
	for _, r := range d.replicas(replicas) {
		e := FlagEvidence{Replica: r.Name}
		e.Since, e.Enabled = st.EnabledAt(r.Name)
		if e.Enabled {
			e.AtVerify, e.HasAtVerify = st.readAtVerify(r.Name, e.Since)
		}
		e.Now = d.Prober.Probe(ctx, r, d.Now()).Flag
		out = append(out, e)
	}
	return out
}

// readAtVerify is what the read command printed on replica when its enable
// verified at since.
func (s *State) readAtVerify(replica string, since time.Time) (string, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		e := s.Events[i]
		if e.Step == StepEnable && e.Phase == PhaseFinished && e.Time.Equal(since) {
			v, ok := e.FlagRead[replica]
			return v, ok
		}
	}
	return "", false
}

// SoakFlagEvidence is FlagEvidence for every replica a soak request
// judges, canaries first: what decides the flag gate of a target whose
// metrics cannot show the flag.
func (d *Driver) SoakFlagEvidence(ctx context.Context, st *State, req gates.Request) []FlagEvidence {
	var ns []string
	for _, t := range append(slices.Clone(req.Canaries), req.Baselines...) {
		ns = append(ns, t.Name)
	}
	return d.FlagEvidence(ctx, st, ns)
}

// NeedsFlagEvidence says whether set has a gate decided from the journal
// and the read command (targets.FlagFromJournal): judging it runs the read
// command on the soak's replicas.
func NeedsFlagEvidence(set gates.Set) bool {
	return slices.ContainsFunc(set, func(g gates.Spec) bool { return !g.Disabled && g.External == targets.FlagFromJournal })
}

// FillFlagEvidence gives every gate of set decided from the journal and
// the read command its values for req's replicas, reading the flag on
// each now. A set without such a gate is left as it is, and no command
// runs.
func (d *Driver) FillFlagEvidence(ctx context.Context, st *State, set gates.Set, req *gates.Request) {
	for _, g := range set {
		if g.Disabled || g.External != targets.FlagFromJournal {
			continue
		}
		if req.External == nil {
			req.External = map[string][]gates.ExternalValue{}
		}
		for _, e := range d.SoakFlagEvidence(ctx, st, *req) {
			req.External[g.Name] = append(req.External[g.Name], gates.ExternalValue{Replica: e.Replica, Value: e.Value(), Evidence: e.Reason()})
		}
	}
}
