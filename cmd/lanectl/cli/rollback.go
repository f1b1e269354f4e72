package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// RollbackOptions are the inputs of 'lanectl rollback'.
type RollbackOptions struct {
	Streams  *IOStreams
	Getenv   Getenv
	Config   string
	Replicas []string
	All      bool
}

// NewCmdRollback builds 'lanectl rollback'. runF replaces runRollback in
// tests.
func NewCmdRollback(streams *IOStreams, getenv Getenv, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{Streams: streams, Getenv: getenv}
	cmd := &cobra.Command{
		Use:   "rollback [--config FILE] (--replica NAME | --all)",
		Short: "Take the flag off replicas again, verified",
		Long: `Run the plan's disable command on the named replica(s), or with --all on every
replica of the plan in reverse rollout order, one at a time. Each must be
proven without the flag (by the target's metrics or commands.read) with every
verify check holding before the next one is touched, and each step is
recorded in the journal under its lock.

A replica that neither the journal nor its own metrics show with the flag is
only verified, not restarted. An interrupted advance step on a replica being
rolled back is cancelled, so the next advance does not enable it again
without judging first.

Exit 1 when a replica does not verify (lanectl stops there), 3 when a host
cannot be reached or its host key is refused (nothing was run).`,
		Example: `  lanectl rollback --replica canary-1
  lanectl rollback --replica n3 --replica n4
  lanectl rollback --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.All == (len(opts.Replicas) > 0) {
				return usageErrorf(cmd, "give --replica NAME (repeatable) or --all")
			}
			if runF != nil {
				return runF(opts)
			}
			return runRollback(cmd, opts)
		},
	}
	addConfigFlag(cmd, &opts.Config)
	cmd.Flags().StringSliceVar(&opts.Replicas, "replica", nil, "replica to roll back (repeatable, or comma-separated)")
	cmd.Flags().BoolVar(&opts.All, "all", false, "roll back every replica in the plan, last enabled first")
	return cmd
}

func runRollback(cmd *cobra.Command, opts *RollbackOptions) error {
	d, closeFn, err := newDriver(cmd.Context(), opts.Streams, opts.Getenv, opts.Config, driverDeps{ssh: true})
	if err != nil {
		return err
	}
	defer closeFn()
	res, err := d.Rollback(cmd.Context(), opts.Replicas, opts.All)
	fmt.Fprint(opts.Streams.ErrOut, res.Notify.WarningLine())
	if len(res.Disabled) > 0 {
		fmt.Fprintf(opts.Streams.Out, "rolled back %s: flag off, verified\n", strings.Join(res.Disabled, ", "))
	}
	if len(res.AlreadyOff) > 0 {
		fmt.Fprintf(opts.Streams.Out, "already off, verified: %s\n", strings.Join(res.AlreadyOff, ", "))
	}
	return err
}
