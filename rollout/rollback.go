package rollout

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// RollbackResult is what Rollback did per replica. The disable command ran
// on every one of them, and each verified off.
type RollbackResult struct {
	// Disabled had the flag by the journal or by their /metrics.
	Disabled []string
	// AlreadyOff had it by neither; the disable command ran anyway, as
	// their env files may still hold the flag for the next restart.
	AlreadyOff []string
	// Notify counts the notifications this run sent and failed to send.
	Notify NotifyStats
}

// Rollback clears the flag on the named replicas (all of them, in reverse
// rollout order, with all), one at a time: it runs the idempotent disable
// command on each, whatever the journal and its /metrics say, and verifies
// it before the next. It stops at the first replica that does not verify.
func (d *Driver) Rollback(ctx context.Context, replicaNames []string, all bool) (*RollbackResult, error) {
	res := &RollbackResult{}
	defer d.notifyFlush(&res.Notify)
	var targets []Replica
	if all {
		targets = slices.Clone(d.Plan.Order())
		slices.Reverse(targets)
	} else {
		for _, n := range replicaNames {
			r, ok := d.Plan.Replica(n)
			if !ok {
				return res, fmt.Errorf("%w %q: the plan has %s", ErrUnknownReplica, n, strings.Join(names(d.Plan.Replicas), ", "))
			}
			targets = append(targets, r)
		}
	}
	lock, st, err := d.openJournal()
	if err != nil {
		return res, err
	}
	defer lock.Unlock()
	if err := d.preflight(ctx, targets); err != nil {
		return res, fmt.Errorf("refusing to roll back: %w", err)
	}
	// An interrupted step on a replica being rolled back is superseded:
	// otherwise the next advance would resume enabling it.
	targetNames := names(targets)
	for _, p := range st.Pending() {
		if slices.ContainsFunc(p.Replicas, func(n string) bool { return slices.Contains(targetNames, n) }) {
			if err := st.End(p, PhaseFailed, d.Now(), "superseded by a rollback"); err != nil {
				return res, err
			}
		}
	}
	for _, r := range targets {
		wasOff := false
		if !st.Replica(r.Name).Enabled {
			var why string
			if wasOff, why = d.Prober.Probe(ctx, r, d.Now()).Check(false); wasOff {
				d.logf("%s: flag already off (%s); running the disable command anyway", r.Name, why)
			}
		}
		started, err := st.Start(StepDisable, []string{r.Name}, d.Now(), false)
		if err != nil {
			return res, err
		}
		if err := d.runDisable(ctx, st, started, []Replica{r}); err != nil {
			return res, err
		}
		if wasOff {
			res.AlreadyOff = append(res.AlreadyOff, r.Name)
		} else {
			res.Disabled = append(res.Disabled, r.Name)
		}
	}
	return res, nil
}
