package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/gates/gatetest"
	"github.com/lanectl/lanectl/targets"
)

// GatesTestOptions are the inputs of 'lanectl gates test'.
type GatesTestOptions struct {
	Streams *IOStreams
	Files   []string
}

// NewCmdGates builds 'lanectl gates' and its 'test' command. runF replaces
// runGatesTest in tests.
func NewCmdGates(streams *IOStreams, runF func(*cobra.Command, *GatesTestOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gates",
		Short: "Work with soak gates",
		Args:  cobra.NoArgs,
	}
	opts := &GatesTestOptions{Streams: streams}
	test := &cobra.Command{
		Use:   "test FILE...",
		Short: "Run unit tests for soak gates, in the manner of promtool test rules",
		Long: `Run gate unit tests: each test loads input series written in promtool's
expanding notation ('0+1x100', '_' for a missing sample), evaluates a
target's gates (with the file's overrides and defined gates) over a window
with Prometheus' engine, and checks the verdict, and optionally the value,
expected of each gate and replica. See the README's "gates test" section
for the file format.

Exit codes: 0 every test passed, 1 a test failed, 3 a file could not be
run (it does not load, or a test in it is malformed).`,
		Example: `  lanectl gates test targets/testdata/gates/*.yml`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Files = args
			if runF != nil {
				return runF(cmd, opts)
			}
			return runGatesTest(cmd, opts)
		},
	}
	cmd.AddCommand(test)
	return cmd
}

// gateTestTarget resolves a test file's target: key to a built-in target.
func gateTestTarget(name string) (gatetest.Target, error) {
	if name == "" {
		name = targets.Default
	}
	t, err := targets.Lookup(name)
	if err != nil {
		return gatetest.Target{}, err
	}
	return gatetest.Target{Gates: t.Gates(), PresenceMetric: t.PresenceMetric, ReplicaLabel: t.ReplicaLabel}, nil
}

func runGatesTest(cmd *cobra.Command, opts *GatesTestOptions) error {
	var bad []error
	passed, failed := 0, 0
	for _, path := range opts.Files {
		f, err := gatetest.Load(path)
		if err != nil {
			bad = append(bad, err)
			fmt.Fprintf(opts.Streams.Out, "  BAD   %v\n", err)
			continue
		}
		rs, err := gatetest.Run(cmd.Context(), f, gateTestTarget)
		gatetest.Report(opts.Streams.Out, rs)
		if err != nil {
			bad = append(bad, err)
			fmt.Fprintf(opts.Streams.Out, "  BAD   %v\n", err)
		}
		for _, r := range rs {
			if r.Passed() {
				passed++
			} else {
				failed++
			}
		}
	}
	fmt.Fprintf(opts.Streams.Out, "%d passed, %d failed, %d bad files\n", passed, failed, len(bad))
	switch {
	case len(bad) > 0:
		return fmt.Errorf("gates test: %w", errors.Join(bad...))
	case failed > 0:
		return fmt.Errorf("gates test: %d of %d tests %w", failed, passed+failed, ErrFailed)
	}
	return nil
}
