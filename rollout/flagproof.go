package rollout

import (
	"context"
	"fmt"
	"strings"

	"github.com/lanectl/lanectl/query"
)

// FlagReading is what a probe found about the plan's flag on one replica.
// The target's metrics prove it where they show it (VerifyConfig.FlagProof
// has Holds); the plan's read command proves it otherwise, and adds to the
// metrics where both exist, in which case they must agree.
type FlagReading struct {
	// Known is true when the proof decided what the replica runs with.
	Known bool
	// Running is the value the replica runs with, parsed as the replica
	// parses it ("true", "nosync", "2GiB"; "" for an unknown flag unset).
	Running string
	// ReadRan is true when the read command ran and exited 0; Read is
	// what it printed, surrounding space trimmed.
	ReadRan bool
	Read    string
	// Detail says how the value was proven, or why it could not be.
	Detail string
	// on and off are the running values of the flag set to the plan's
	// value and of the flag unset.
	on, off string
}

// Is says whether the replica is proven to run with the flag on (the
// plan's value) or, with enabled false, as with the flag unset.
func (f FlagReading) Is(enabled bool) bool {
	return f.Known && f.Running == f.want(enabled)
}

func (f FlagReading) want(enabled bool) string {
	if enabled {
		return f.on
	}
	return f.off
}

// readFlag proves the plan's flag on r from the scrape and the read
// command.
func (p *Prober) readFlag(ctx context.Context, snap *query.Snapshot, r Replica) FlagReading {
	proof, flag := p.Plan.Verify.FlagProof, p.Plan.Flag
	f := FlagReading{}
	f.on, _ = proof.Running(flag.Value)
	f.off, _ = proof.Running("")
	var found []string
	var byMetrics, byRead string
	metricsKnown, readKnown := false, false
	if proof.FromMetrics() {
		var detail string
		byMetrics, detail, metricsKnown = p.flagFromMetrics(ctx, snap, r, f)
		found = append(found, detail)
	}
	if p.Plan.Commands.Read != "" {
		var detail string
		byRead, detail, readKnown = p.flagFromRead(ctx, r, &f)
		found = append(found, detail)
	}
	switch {
	case proof.FromMetrics() && p.Plan.Commands.Read != "":
		f.Known, f.Running = metricsKnown && readKnown && byMetrics == byRead, byRead
		if metricsKnown && readKnown && !f.Known {
			found = append(found, "the metrics and the read command disagree")
		}
	case proof.FromMetrics():
		f.Known, f.Running = metricsKnown, byMetrics
	default:
		f.Known, f.Running = readKnown, byRead
	}
	if f.Known {
		f.Detail = fmt.Sprintf("%s runs %q (%s)", flag.Name, f.Running, strings.Join(found, "; "))
	} else {
		f.Detail = fmt.Sprintf("%s: %s", flag.Name, strings.Join(found, "; "))
	}
	return f
}

// flagFromMetrics evaluates the target's proof for the flag on and for it
// unset, and returns the running value it proved.
func (p *Prober) flagFromMetrics(ctx context.Context, snap *query.Snapshot, r Replica, f FlagReading) (running, detail string, ok bool) {
	if snap == nil {
		return "", "no scrape of its metrics", false
	}
	src := p.Plan.Verify.FlagProof.Holds
	for _, v := range []string{f.on, f.off} {
		expr, err := renderCondition(src, r.Selector, v)
		if err != nil {
			return "", fmt.Sprintf("flag proof: %v", err), false
		}
		if ok, _ := holds(ctx, snap, expr); ok {
			return v, expr + " holds", true
		}
	}
	expr, _ := renderCondition(src, r.Selector, f.on)
	return "", fmt.Sprintf("its metrics prove neither %q nor %q (%s is empty)", f.on, f.off, expr), false
}

// flagFromRead runs the read command on r and parses what it printed as
// the replica would.
func (p *Prober) flagFromRead(ctx context.Context, r Replica, f *FlagReading) (running, detail string, ok bool) {
	cmd, _, err := p.Plan.ReadCommand(r)
	switch {
	case err != nil:
		return "", fmt.Sprintf("read command: %v", err), false
	case p.Runner == nil:
		return "", "read command: no runner to run it", false
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout())
	defer cancel()
	out, err := p.Runner.Run(ctx, r, cmd)
	if err != nil {
		return "", fmt.Sprintf("read command: %v", err), false
	}
	f.ReadRan, f.Read = true, strings.TrimSpace(out.Stdout)
	running, warning := p.Plan.Verify.FlagProof.Running(f.Read)
	detail = fmt.Sprintf("read printed %q", f.Read)
	if f.Read == "" {
		detail = "read printed nothing: unset"
	}
	if warning != "" {
		detail += ": " + warning
	}
	return running, detail, true
}
