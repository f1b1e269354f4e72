package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/rollout"
	"github.com/lanectl/lanectl/targets"
)

// JudgeOptions are the inputs of 'lanectl judge'.
type JudgeOptions struct {
	Streams *IOStreams
	// Record is the file 'lanectl soak --record' wrote.
	Record string
	// Config is a plan file whose gates (its target's, with its soak.gates)
	// decide; empty means the recorded target's built-in gates.
	Config string
	// Target overrides the recorded target when there is no plan.
	Target string
	Output string
}

// NewCmdJudge builds 'lanectl judge'. runF replaces runJudge in tests.
func NewCmdJudge(streams *IOStreams, runF func(*cobra.Command, *JudgeOptions) error) *cobra.Command {
	opts := &JudgeOptions{Streams: streams}
	cmd := &cobra.Command{
		Use:   "judge FILE [--config FILE | --target NAME] [-o table|json]",
		Short: "Decide a recorded soak again, offline, with other limits or gates",
		Long: `Re-decide a soak recorded with 'lanectl soak --record FILE', without the metrics.

The record holds every gate's query and each replica's value. judge applies
the gates as they are configured now (the plan's with --config: its target's
gate set with its soak.gates overrides; otherwise the recorded target's
built-in gates) to those values, and prints the new verdict and every gate
whose verdict would change.

A gate whose query template changed since the recording, or that was not in
it, cannot be decided from the recorded values: it is inconclusive, never a
pass. Only limits (min, max, factor, slack) and disabling are re-judged
offline.

Exit 0 pass, 1 a gate fails, 2 inconclusive, 3 the file is not a record.`,
		Example: `  lanectl soak --canary n2 --baseline n1,n3 --record soak-n2.json
  # would the soak pass with one heartbeat drop allowed?
  #   soak: {gates: {heartbeat_drops: {max: 1}}} in lanectl.yaml
  lanectl judge soak-n2.json --config lanectl.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Record = args[0]
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if opts.Config != "" && opts.Target != "" {
				return usageErrorf(cmd, "give --config or --target, not both: a plan names its target")
			}
			if runF != nil {
				return runF(cmd, opts)
			}
			return runJudge(cmd, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.Config, "config", "c", "", "plan file whose gates decide")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.Flags().StringVar(&opts.Target, "target", "", "target whose built-in gates decide (default: the recorded one): "+strings.Join(targets.Names(), ", "))
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// judgeJSON is the -o json document of judge.
type judgeJSON struct {
	Recorded gates.Result   `json:"recorded"`
	Now      gates.Result   `json:"now"`
	Changes  []gates.Change `json:"changes"`
}

func runJudge(_ *cobra.Command, opts *JudgeOptions) error {
	data, err := os.ReadFile(opts.Record)
	if err != nil {
		return fmt.Errorf("read record: %w", err)
	}
	rec, err := gates.ReadRecord(data)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Record, err)
	}
	set, err := judgeGates(opts, rec)
	if err != nil {
		return err
	}
	now, err := rec.Judge(set)
	if err != nil {
		return fmt.Errorf("%s: %w", opts.Record, err)
	}
	changes := gates.Changes(rec.Result, now)
	if opts.Output == outputJSON {
		if changes == nil {
			changes = []gates.Change{}
		}
		if err := writeJSON(opts.Streams.Out, judgeJSON{Recorded: rec.Result, Now: now, Changes: changes}); err != nil {
			return err
		}
	} else if err := writeJudgeTable(opts.Streams.Out, rec, now, changes); err != nil {
		return err
	}
	return verdictError("recorded soak of "+strings.Join(targetNames(rec.Canaries), ", ")+" judged again", now)
}

// judgeGates is the gate set judge applies: the plan's, a named target's,
// or the recorded target's.
func judgeGates(opts *JudgeOptions, rec gates.Record) (gates.Set, error) {
	if opts.Config != "" {
		plan, err := rollout.LoadPlan(opts.Config)
		if err != nil {
			return nil, err
		}
		if rec.Target != "" && plan.Target.Name != rec.Target {
			return nil, fmt.Errorf("%s targets %s, but the soak was recorded with the %s target's gates", opts.Config, plan.Target.Name, rec.Target)
		}
		return plan.GateSet()
	}
	name := opts.Target
	if name == "" {
		name = rec.Target
	}
	if name == "" {
		name = targets.Default
	}
	t, err := targets.Lookup(name)
	if err != nil {
		return nil, err
	}
	return t.Gates(), nil
}

func writeJudgeTable(w io.Writer, rec gates.Record, now gates.Result, changes []gates.Change) error {
	base := strings.Join(targetNames(rec.Baselines), ", ")
	if base == "" {
		base = "none"
	}
	fmt.Fprintf(w, "recorded %s: canary %s, baselines %s\n", formatTime(rec.RecordedAt), strings.Join(targetNames(rec.Canaries), ", "), base)
	fmt.Fprintf(w, "window %s .. %s (%s)\n\n", formatTime(rec.Window.Start), formatTime(rec.Window.End), soakDuration(rec.Window.Duration()))
	if len(now.Gates) > 0 {
		if err := writeSoakGates(w, now); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	if len(changes) == 0 {
		fmt.Fprintln(w, "no gate changes its verdict")
	} else {
		rows := make([][]string, 0, len(changes))
		for _, c := range changes {
			rows = append(rows, []string{c.Gate, verdictOrNone(c.Before), verdictOrNone(c.After), c.Reason})
		}
		if err := writeNotedTable(w, notedTable{header: []string{"GATE", "RECORDED", "NOW", "REASON"}, rows: rows, key: []int{0}}); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nverdict: %s (recorded: %s): %s\n", now.Verdict, rec.Result.Verdict, now.Reason)
	return nil
}

func verdictOrNone(v gates.Verdict) string {
	if v == "" {
		return "-"
	}
	return string(v)
}

// verdictError turns a verdict into the error whose exit code says it.
func verdictError(who string, res gates.Result) error {
	switch res.Verdict {
	case gates.Pass:
		return nil
	case gates.Fail:
		return fmt.Errorf("%s %w: %s", who, ErrFailed, res.Reason)
	case gates.Inconclusive:
		return fmt.Errorf("%s %w: %s", who, ErrInconclusive, res.Reason)
	}
	return errors.New(who + ": unknown verdict " + string(res.Verdict))
}
