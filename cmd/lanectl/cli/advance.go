package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/rollout"
)

// AdvanceOptions are the inputs of 'lanectl advance'.
type AdvanceOptions struct {
	Streams *IOStreams
	Getenv  Getenv
	Config  string
	DryRun  bool
}

// NewCmdAdvance builds 'lanectl advance'. runF replaces runAdvance in tests.
func NewCmdAdvance(streams *IOStreams, getenv Getenv, runF func(*AdvanceOptions) error) *cobra.Command {
	opts := &AdvanceOptions{Streams: streams, Getenv: getenv}
	cmd := &cobra.Command{
		Use:   "advance [--config FILE] [--dry-run]",
		Short: "Take the next step of the rollout: judge the last soak, then enable the next replica(s)",
		Long: `Take the next step of the rollout the plan file describes, under the journal's
lock:

  1. If a previous run was interrupted (even by SIGKILL), finish its step:
     re-run the command where the replica does not yet show the wanted state,
     and verify.
  2. Otherwise judge the soak of the most recently enabled replica(s) with the
     soak gates over their window. A failed gate refuses (exit 1) and prints
     the gate table; a window that is not over exits 2 with the time left.
  3. When it passed (or nothing is enabled yet), run the enable command over
     SSH on the next replica(s): stage by stage, at most max_parallel at once.
  4. Verify each replica: the flag proven on (by the target's metrics, or by
     commands.read over SSH) and every verify check holding (the target's,
     or the plan's verify.http and verify.metrics), over fresh scrapes of the
     replicas' own metrics. Only then is the enable time recorded: it starts
     the soak window.
  5. If verification fails, run the disable command, verify the replica is
     back, record the rollback and exit 1.

Every host is connected to (host key checked) before anything is recorded or
run, so an unreachable host or a changed host key changes nothing (exit 3).
When every replica has the flag and the last soak passed, advance says the
rollout is complete and exits 0.

--dry-run prints every remaining step with the exact remote commands, and
touches nothing: no lock, no SSH, no journal write, no query.`,
		Example: `  lanectl advance --dry-run
  lanectl advance
  lanectl advance --config /etc/lanectl/prod.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runAdvance(cmd, opts)
		},
	}
	addConfigFlag(cmd, &opts.Config)
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print the remaining steps and exact remote commands; change nothing")
	return cmd
}

func runAdvance(cmd *cobra.Command, opts *AdvanceOptions) error {
	ctx := cmd.Context()
	out := opts.Streams.Out
	if opts.DryRun {
		d, closeFn, err := newDriver(ctx, opts.Streams, opts.Getenv, opts.Config, driverDeps{})
		if err != nil {
			return err
		}
		defer closeFn()
		steps, err := d.DryRun()
		if err != nil {
			return err
		}
		return writeDryRun(out, d.Plan, steps)
	}

	d, closeFn, err := newDriver(ctx, opts.Streams, opts.Getenv, opts.Config, driverDeps{ssh: true, metrics: true})
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := d.Advance(ctx)
	fmt.Fprint(opts.Streams.ErrOut, res.Notify.WarningLine())
	if res.NoBaseline {
		fmt.Fprintln(out, "every replica has the flag: no baseline is left, so only the gates' absolute limits applied")
	}
	// A pass is already in the log; anything else gets the evidence.
	if res.Soak != nil && res.Soak.Verdict != gates.Pass {
		fmt.Fprintf(out, "\nsoak of %s: %s (%s)\n", strings.Join(res.Judged, ", "), res.Soak.Verdict, res.Soak.Reason)
		if len(res.Soak.Gates) > 0 {
			if werr := writeSoakGates(out, *res.Soak); werr != nil {
				return werr
			}
		}
	}
	switch {
	case err != nil && res.Outcome == rollout.OutcomeRefused:
		err = fmt.Errorf("%w\nto take the flag off: lanectl rollback --replica %s", err, strings.Join(res.Judged, " --replica "))
	case err == nil && res.Outcome == rollout.OutcomeComplete:
		fmt.Fprintf(out, "rollout complete: every replica has %s=%s and the last soak passed\n", d.Plan.Flag.Name, d.Plan.Flag.Value)
	case err == nil && res.Outcome == rollout.OutcomeEnabled:
		fmt.Fprintf(out, "enabled %s; run 'lanectl advance' again after the %s soak\n", strings.Join(res.Batch, ", "), formatDuration(d.Plan.Soak.Window))
	case err == nil && res.Outcome == rollout.OutcomeResumed:
		fmt.Fprintf(out, "finished the interrupted step on %s\n", strings.Join(res.Batch, ", "))
	}
	return err
}

func writeDryRun(w io.Writer, p *rollout.Plan, steps []rollout.PlannedStep) error {
	fmt.Fprintf(w, "dry run of %s (journal %s): nothing is changed\n\n", p.Path, p.StatePath)
	for i, s := range steps {
		n := i + 1
		switch s.Kind {
		case rollout.PlanResume:
			fmt.Fprintf(w, "%d. finish the interrupted %s of %s\n", n, s.Step, replicaNames(s.Replicas))
			writeStepCommands(w, p, s, s.Step == rollout.StepEnable)
		case rollout.PlanJudge:
			fmt.Fprintf(w, "%d. judge the soak of %s over %s .. %s (%s); stop here unless every gate passes\n",
				n, replicaNames(s.Replicas), formatTime(s.Window.Start), formatTime(s.Window.End), formatDuration(s.Duration))
		case rollout.PlanEnable:
			fmt.Fprintf(w, "%d. enable %s (stage %s)\n", n, replicaNames(s.Replicas), s.Stage)
			writeStepCommands(w, p, s, true)
		case rollout.PlanSoak:
			fmt.Fprintf(w, "%d. soak %s for %s, then judge it\n", n, replicaNames(s.Replicas), formatDuration(s.Duration))
		case rollout.PlanComplete:
			fmt.Fprintf(w, "%d. rollout complete\n", n)
		}
	}
	return nil
}

func writeStepCommands(w io.Writer, p *rollout.Plan, s rollout.PlannedStep, enable bool) {
	for _, r := range s.Replicas {
		fmt.Fprintf(w, "   %s over ssh %s:\n     %s\n", r.Name, r.SSH, s.Commands[r.Name])
	}
	for _, r := range s.Replicas {
		if read, ok, err := p.ReadCommand(r); ok && err == nil {
			fmt.Fprintf(w, "   %s's flag read over ssh with:\n     %s\n", r.Name, read)
		}
	}
	fmt.Fprintf(w, "   %s\n", p.DescribeVerify(enable))
	if enable {
		for _, r := range s.Replicas {
			fmt.Fprintf(w, "   if %s does not verify, roll back with:\n     %s\n", r.Name, s.Rollbacks[r.Name])
		}
	}
}

func replicaNames(rs []rollout.Replica) string {
	ns := make([]string, len(rs))
	for i, r := range rs {
		ns[i] = r.Name
	}
	return strings.Join(ns, ", ")
}
