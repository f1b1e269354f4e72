package cli

import (
	"github.com/spf13/cobra"
)

// Getenv reads one environment variable. Commands receive it instead of
// calling os.Getenv so tests control the environment they see.
type Getenv func(key string) string

// NewCmdRoot builds the lanectl command tree.
func NewCmdRoot(streams *IOStreams, getenv Getenv) *cobra.Command {
	root := &cobra.Command{
		Use:   "lanectl",
		Short: "Measured, reversible rollout of the four-lane raft dispatcher",
		Long: `lanectl rolls ELASTICKV_RAFT_DISPATCHER_LANES out to a raft-based store one
replica at a time and decides every step from measurements.

It ships the four-lane dispatcher itself (heartbeat / replication / snapshot /
other lanes, so a multi-MiB snapshot no longer stalls appends and heartbeats),
a runnable replica that uses it, soak gates that judge a canary against its
baseline replicas from Prometheus (or an embedded store), a rollout driver that
flips the flag over SSH with state on disk and automatic rollback, and Grafana
dashboards and alert rules that show the same numbers.

Exit codes for commands that judge something:
  0  pass / done
  1  a gate failed, or the rollout refused to go on
  2  inconclusive: not enough data, or the soak window is not over yet
  3  operational error: bad config or input, Prometheus or SSH unreachable

Start with 'lanectl demo' to see a whole rollout on this machine.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version(),
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{cmd: cmd, err: err}
	})

	root.AddCommand(
		NewCmdVersion(streams),
		NewCmdLanes(streams, nil),
		NewCmdNode(streams, getenv, nil),
		NewCmdLoad(streams, nil),
		NewCmdBench(streams),
		NewCmdDashboards(streams, nil),
		NewCmdAdvance(streams, getenv, nil),
		NewCmdRollback(streams, getenv, nil),
		NewCmdStatus(streams, getenv, nil),
		NewCmdSoak(streams, getenv, nil),
		NewCmdJudge(streams, nil),
		NewCmdGates(streams, nil),
		NewCmdDemo(streams, nil),
	)
	return root
}
