package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
)

// Verdict errors. The CLI maps ErrSoakFailed, ErrVerifyFailed,
// ErrRollbackFailed and ErrLocked to "the rollout refused to go on" and
// ErrSoakPending to "inconclusive"; anything else is operational.
var (
	// ErrSoakFailed is returned by Advance when the soak of the most
	// recently enabled replicas failed a gate: nothing was changed.
	ErrSoakFailed = errors.New("soak failed")
	// ErrSoakPending is returned by Advance when the soak window is not
	// over yet, or over without enough data to decide: nothing was changed.
	ErrSoakPending = errors.New("soak not decided")
	// ErrVerifyFailed is returned when a replica did not prove the flag
	// change (metrics, health, leader) in time after its command ran, or
	// the command failed; Advance then rolled the batch back.
	ErrVerifyFailed = errors.New("verification failed")
	// ErrRollbackFailed is returned when a disable did not verify: the
	// replica's flag state is unknown and needs a person.
	ErrRollbackFailed = errors.New("rollback did not verify")
	// ErrUnknownReplica is returned when a replica named on the command
	// line or in the journal is not in the plan.
	ErrUnknownReplica = errors.New("unknown replica")
)

// Driver runs the rollout steps of one plan. Plan, Prober, Now and Log are
// always needed; Runner for Advance and Rollback; Querier to judge soaks and
// to show drops. DryRun needs neither.
type Driver struct {
	Plan    *Plan
	Runner  Runner
	Querier gates.Querier
	Prober  Prober
	Now     func() time.Time
	// Log receives one line per action taken, as it happens.
	Log io.Writer
	// Notifier announces failed soaks, rollbacks and the end of the
	// rollout; nil announces nothing.
	Notifier *Notifier
}

func (d *Driver) logf(format string, args ...any) {
	fmt.Fprintf(d.Log, "%s %s\n", d.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// Outcome says what one Advance did.
type Outcome string

// Advance outcomes.
const (
	OutcomeEnabled    Outcome = "enabled"     // the next batch has the flag, verified
	OutcomeComplete   Outcome = "complete"    // every replica has the flag and the last soak passed
	OutcomeSoaking    Outcome = "soaking"     // the last batch's soak is not decided yet
	OutcomeRefused    Outcome = "refused"     // the last batch's soak failed
	OutcomeRolledBack Outcome = "rolled-back" // the next batch failed verification and was rolled back
	OutcomeResumed    Outcome = "resumed"     // an interrupted step was finished
)

// AdvanceResult is what Advance found and did.
type AdvanceResult struct {
	Outcome Outcome
	// Judged is the batch whose soak decided this step, and Soak its
	// verdict; empty when nothing needed judging.
	Judged []string
	Soak   *gates.Result
	// NoBaseline is true when every replica had the flag, so only the
	// gates' absolute limits could be applied.
	NoBaseline bool
	// Remaining is how much of the soak window is left when Outcome is
	// OutcomeSoaking.
	Remaining time.Duration
	// Batch is the replicas enabled (or attempted) in this run.
	Batch []string
	// Resumed are the interrupted steps this run finished.
	Resumed []Event
	// Notify counts the notifications this run sent and failed to send.
	Notify NotifyStats
}

// Advance takes the next step of the rollout under the lock: finish an
// interrupted step if there is one; otherwise judge the most recently
// enabled batch's soak and, when it passed, enable the next batch and verify
// it, rolling it back if it does not verify.
func (d *Driver) Advance(ctx context.Context) (*AdvanceResult, error) {
	res := &AdvanceResult{}
	defer d.notifyFlush(&res.Notify)
	lock, st, err := d.openJournal()
	if err != nil {
		return res, err
	}
	defer lock.Unlock()
	if pending := st.Pending(); len(pending) > 0 {
		res.Outcome = OutcomeResumed
		return res, d.resume(ctx, st, pending, res)
	}
	// A passing verdict is journalled only once the next step can start,
	// so a run stopped by an unreachable host leaves the journal as it was.
	recordPass := func() error { return nil }
	if batch, since := st.LastBatch(); len(batch) > 0 {
		record, err := d.judge(ctx, st, batch, since, res)
		if err != nil {
			return res, err
		}
		recordPass = record
	}
	next := d.nextBatch(st)
	if len(next) == 0 {
		if err := recordPass(); err != nil {
			return res, err
		}
		res.Outcome = OutcomeComplete
		d.logf("rollout complete: every replica has %s=%s", d.Plan.Flag.Name, d.Plan.Flag.Value)
		d.notifyComplete(ctx, res)
		return res, nil
	}
	res.Batch = names(next)
	if err := d.preflight(ctx, next); err != nil {
		return res, fmt.Errorf("refusing to enable %s: %w", strings.Join(res.Batch, ", "), err)
	}
	if err := recordPass(); err != nil {
		return res, err
	}
	started, err := st.Start(StepEnable, res.Batch, d.Now(), false)
	if err != nil {
		return res, err
	}
	return res, d.runEnable(ctx, st, started, next, res)
}

// openJournal takes the rollout lock and loads the journal, refusing one
// that does not match the plan. The caller unlocks.
func (d *Driver) openJournal() (*Lock, *State, error) {
	lock, err := AcquireLock(d.Plan.StatePath)
	if err != nil {
		return nil, nil, err
	}
	st, err := LoadJournal(d.Plan, d.Now())
	if err != nil {
		lock.Unlock()
		return nil, nil, err
	}
	return lock, st, nil
}

func names(rs []Replica) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Name
	}
	return out
}

func (d *Driver) replicas(ns []string) []Replica {
	out := make([]Replica, 0, len(ns))
	for _, n := range ns {
		if r, ok := d.Plan.Replica(n); ok {
			out = append(out, r)
		}
	}
	return out
}

// nextBatch is the first replicas, in rollout order, that do not have the
// flag: at most the stage's max_parallel, all from one stage.
func (d *Driver) nextBatch(st *State) []Replica {
	for _, s := range d.Plan.Stages {
		var off []Replica
		for _, r := range d.Plan.StageReplicas(s.Name) {
			if _, on := st.EnabledAt(r.Name); !on {
				off = append(off, r)
			}
		}
		if len(off) > 0 {
			return off[:min(len(off), s.MaxParallel)]
		}
	}
	return nil
}

// preflight connects to every replica about to be touched, so that an
// unreachable host or a refused host key stops the run before anything is
// journalled or run.
func (d *Driver) preflight(ctx context.Context, rs []Replica) error {
	c, ok := d.Runner.(Checker)
	if !ok {
		return nil
	}
	for _, r := range rs {
		if err := c.Check(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// SoakRequest builds the gate request for batch enabled at since, as
// Plan.DecideSoak decides it: the batch are the canaries, every replica without
// the flag a baseline, and with no baseline left only the absolute limits.
func (d *Driver) SoakRequest(st *State, batch []string, since time.Time) (gates.Set, gates.Request, bool, error) {
	s, err := d.Plan.DecideSoak(st, SoakQuestion{Canaries: batch, Start: since}, d.Now())
	if err != nil {
		return nil, gates.Request{}, false, err
	}
	s.Request.Now = d.Now()
	return s.Set, s.Request, s.NoBaseline, nil
}

// judge evaluates the soak of batch. A failed or undecided soak is
// journalled (when decided) and returned as an error; a pass over a complete
// window returns nil and a function that journals it.
func (d *Driver) judge(ctx context.Context, st *State, batch []string, since time.Time, res *AdvanceResult) (func() error, error) {
	res.Judged = batch
	set, req, noBaseline, err := d.SoakRequest(st, batch, since)
	if err != nil {
		return nil, err
	}
	res.NoBaseline = noBaseline
	if d.Querier == nil {
		return nil, errors.New("judge soak: no metrics source (set prometheus.url or prometheus.targets)")
	}
	d.FillFlagEvidence(ctx, st, set, &req)
	r, err := gates.Evaluate(ctx, d.Querier, set, req)
	if err != nil {
		return nil, fmt.Errorf("judge soak of %s: %w", strings.Join(batch, ", "), err)
	}
	res.Soak = &r
	record := func() error { return d.recordSoak(st, batch, req.Window, r) }
	switch {
	case r.Verdict == gates.Fail:
		if err := record(); err != nil {
			return nil, err
		}
		res.Outcome = OutcomeRefused
		d.logf("soak of %s failed: %s", strings.Join(batch, ", "), r.Reason)
		d.notifySoakFailed(ctx, batch, r)
		return nil, fmt.Errorf("%w: %s: %s", ErrSoakFailed, strings.Join(batch, ", "), r.Reason)
	case !r.Complete:
		res.Outcome = OutcomeSoaking
		res.Remaining = req.Window.End.Sub(req.Now)
		return nil, fmt.Errorf("%w: soak of %s ends %s, %s from now: %s", ErrSoakPending, strings.Join(batch, ", "), req.Window.End.UTC().Format(time.RFC3339), res.Remaining.Round(time.Second), r.Reason)
	case r.Verdict != gates.Pass:
		if err := record(); err != nil {
			return nil, err
		}
		res.Outcome = OutcomeSoaking
		return nil, fmt.Errorf("%w: soak of %s: %s", ErrSoakPending, strings.Join(batch, ", "), r.Reason)
	}
	d.logf("soak of %s passed: %s", strings.Join(batch, ", "), r.Reason)
	return record, nil
}

// recordSoak journals a verdict unless the same verdict on the same window
// is already the latest one, so re-running advance does not grow the journal.
func (d *Driver) recordSoak(st *State, batch []string, w gates.Window, r gates.Result) error {
	for _, e := range slices.Backward(st.Events) {
		if e.Step == StepSoak && slices.Equal(e.Replicas, batch) && e.WindowStart.Equal(w.Start.UTC()) {
			if e.Verdict == string(r.Verdict) {
				return nil
			}
			break
		}
	}
	phase := PhaseFinished
	if r.Verdict == gates.Fail {
		phase = PhaseFailed
	}
	_, err := st.Record(Event{Time: d.Now(), Step: StepSoak, Phase: phase, Replicas: batch, Verdict: string(r.Verdict), WindowStart: w.Start, WindowEnd: w.End, Reason: soakReason(r)})
	return err
}

func soakReason(r gates.Result) string {
	var bad []string
	for _, g := range r.Gates {
		if g.Verdict != gates.Pass {
			bad = append(bad, fmt.Sprintf("%s: %s", g.Name, g.Reason))
		}
	}
	if len(bad) == 0 {
		return r.Reason
	}
	return strings.Join(bad, "; ")
}

// runEnable runs the enable command on each replica of a started enable
// step (skipping those that already prove the flag), verifies all of them,
// and journals the outcome. A batch that does not verify is rolled back.
func (d *Driver) runEnable(ctx context.Context, st *State, started Event, batch []Replica, res *AdvanceResult) error {
	failure := d.runCommands(ctx, batch, true)
	var verified map[string]Probe
	if failure == nil {
		verified, failure = d.Prober.Verify(ctx, batch, true, d.Plan.Verify.Timeout, d.Plan.Verify.Interval, d.Plan.Verify.Settle, d.Now)
	}
	if ctx.Err() != nil {
		// Interrupted: leave the step pending so the next run finishes it.
		return fmt.Errorf("enable %s interrupted: %w", strings.Join(started.Replicas, ", "), ctx.Err())
	}
	if failure == nil {
		if err := endVerified(st, started, d.Now(), verified); err != nil {
			return err
		}
		if res.Outcome == "" {
			res.Outcome = OutcomeEnabled
		}
		d.logf("enabled %s: verified; soak runs until %s", strings.Join(started.Replicas, ", "), d.Now().Add(d.Plan.Soak.Window).UTC().Format(time.RFC3339))
		d.notifyStepSucceeded(ctx)
		return nil
	}
	d.logf("enable of %s failed: %v; rolling back", strings.Join(started.Replicas, ", "), failure)
	if err := st.End(started, PhaseFailed, d.Now(), failure.Error()); err != nil {
		return err
	}
	res.Outcome = OutcomeRolledBack
	rb, err := st.Start(StepDisable, started.Replicas, d.Now(), true)
	if err != nil {
		return err
	}
	if err := d.runDisable(ctx, st, rb, batch); err != nil {
		return fmt.Errorf("%w: %w; and then: %w", ErrVerifyFailed, failure, err)
	}
	return fmt.Errorf("%w: %w; rolled back %s", ErrVerifyFailed, failure, strings.Join(started.Replicas, ", "))
}

// runCommands runs the enable (or disable) command on each replica of
// batch. It returns the first failure.
//
// An enable is skipped on a replica that already shows the flag. A disable
// never is: /metrics shows what the running process has, not what its env
// file will give it at the next restart, and the disable command is what
// clears the file.
func (d *Driver) runCommands(ctx context.Context, batch []Replica, enable bool) error {
	verb := "disable"
	if enable {
		verb = "enable"
	}
	for _, r := range batch {
		// The replica's own metrics decide whether an enable is needed;
		// whether it is healthy is left to the verification that follows,
		// which waits for it.
		if enable {
			if pr := d.Prober.Probe(ctx, r, d.Now()); pr.Flag.Is(true) {
				d.logf("%s: already enabled (%s); verifying instead of running the command", r.Name, pr.Flag.Detail)
				continue
			}
		}
		cmd, err := d.command(r, enable)
		if err != nil {
			return err
		}
		d.logf("%s: %s %s: %s", r.Name, verb, describe(d.Runner, r), cmd)
		if _, err := d.Runner.Run(ctx, r, cmd); err != nil {
			return fmt.Errorf("%s command on %s: %w", verb, r.Name, err)
		}
	}
	return nil
}

func (d *Driver) command(r Replica, enable bool) (string, error) {
	if enable {
		return d.Plan.EnableCommand(r)
	}
	return d.Plan.DisableCommand(r)
}

// runDisable runs the disable command on every replica of a started
// disable step, whatever their /metrics show, verifies them, and journals
// how it ended and what ran.
func (d *Driver) runDisable(ctx context.Context, st *State, started Event, batch []Replica) error {
	failure := d.runCommands(ctx, batch, false)
	if failure == nil {
		_, failure = d.Prober.Verify(ctx, batch, false, d.Plan.Verify.Timeout, d.Plan.Verify.Interval, d.Plan.Verify.Settle, d.Now)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("disable %s interrupted: %w", strings.Join(started.Replicas, ", "), ctx.Err())
	}
	if failure != nil {
		d.logf("disable of %s did not verify: %v", strings.Join(started.Replicas, ", "), failure)
		d.notifyRollback(ctx, st, started, failure)
		if err := st.End(started, PhaseFailed, d.Now(), failure.Error()); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s: %w", ErrRollbackFailed, strings.Join(started.Replicas, ", "), failure)
	}
	d.logf("disabled %s: verified, after running the disable command on each", strings.Join(started.Replicas, ", "))
	d.notifyRollback(ctx, st, started, nil)
	return st.End(started, PhaseFinished, d.Now(), fmt.Sprintf("ran the disable command on %s, then verified the flag off", strings.Join(started.Replicas, ", ")))
}

// resume finishes interrupted steps, oldest first. Enabling a replica that
// already shows the flag runs nothing and is verified; a disable always
// runs its command.
func (d *Driver) resume(ctx context.Context, st *State, pending []Event, res *AdvanceResult) error {
	for _, p := range pending {
		batch := d.replicas(p.Replicas)
		d.logf("resuming the interrupted %s of %s (started %s)", p.Step, strings.Join(p.Replicas, ", "), p.Time.UTC().Format(time.RFC3339))
		if err := d.preflight(ctx, batch); err != nil {
			return fmt.Errorf("refusing to resume %s of %s: %w", p.Step, strings.Join(p.Replicas, ", "), err)
		}
		res.Resumed = append(res.Resumed, p)
		res.Batch = p.Replicas
		var err error
		if p.Step == StepEnable {
			err = d.runEnable(ctx, st, p, batch, res)
		} else {
			err = d.runDisable(ctx, st, p, batch)
			if err == nil && p.Auto {
				// The run that started this rollback was failing an
				// enable; finishing the rollback does not make it a pass.
				err = fmt.Errorf("%w: finished the automatic rollback of %s", ErrVerifyFailed, strings.Join(p.Replicas, ", "))
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
