package cli

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/dashboards"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/targets"
)

// NewCmdDashboards builds 'lanectl dashboards', the parent of export.
func NewCmdDashboards(streams *IOStreams, runExportF func(*DashboardsExportOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Grafana dashboards and Prometheus alert rules, per target",
		Long: `lanectl ships the Grafana dashboards and Prometheus rules that show the
numbers its soak gates judge, one set per target.

--target lanectl (the default), lanectl's replica and node's metrics:
  lanes-overview.json      per-lane drops (heartbeat first), errors, queue
                           depth and wait, flag and sync mode per replica,
                           elections, follower last contact, commit/applied lag
  lanes-rollout.json       a soak in progress: canary vs baselines for each gate
  lanes.rules.yml          recording rules, and alerts for heartbeat-lane drops,
                           a rollout stalled half-way, an unexpected sync mode,
                           rising transport errors and election storms

--target elastickv, stock upstream elastickv's metrics:
  elastickv-overview.json  per raft group: drops, errors (and by gRPC code),
                           outbound messages, step queue full, leader changes,
                           follower last contact, node states, leader identity,
                           commit/applied lag, fsm pending; sync mode per node
  elastickv-rollout.json   a soak in progress: canary vs baselines, each signal
                           over all raft groups of a node
  elastickv.rules.yml      recording rules, and alerts for drops, rising
                           errors, a full step queue, a group without a leader,
                           an unexpected sync mode and election storms

Stock elastickv has no lane label and no metric that shows the flag, so its
set has no per-lane panels, no flag panel and no flag alert; a text panel on
the dashboard says so.

They are built into the binary; 'lanectl dashboards export DIR' writes them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf(cmd, "missing subcommand: want export")
		},
	}
	cmd.AddCommand(NewCmdDashboardsExport(streams, runExportF))
	return cmd
}

// DashboardsExportOptions are the inputs of 'lanectl dashboards export'.
type DashboardsExportOptions struct {
	Streams *IOStreams
	// Dir receives the files; it is created if missing.
	Dir string
	// Set is the target's dashboards and rules.
	Set dashboards.Set
	// Rules are the values the rules file is rendered with.
	Rules dashboards.RuleOptions
}

// NewCmdDashboardsExport builds 'lanectl dashboards export DIR'. runF
// replaces runDashboardsExport in tests.
func NewCmdDashboardsExport(streams *IOStreams, runF func(*DashboardsExportOptions) error) *cobra.Command {
	opts := &DashboardsExportOptions{Streams: streams}
	defaults := dashboards.DefaultRuleOptions()
	var target, syncMode, divergedFor string
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the dashboards and alert rules of a target into DIR",
		Long: `Write the target's dashboards and rules file into DIR (created if
missing; files of the same name are replaced) and print each path:
lanes-overview.json, lanes-rollout.json and lanes.rules.yml for --target
lanectl (the default), elastickv-overview.json, elastickv-rollout.json and
elastickv.rules.yml for --target elastickv.

Import the JSON into Grafana (Dashboards > New > Import, or a provisioning
directory) and pick your Prometheus data source: the dashboards use a
$datasource variable and carry no data source UID. Add the rules file to
rule_files in prometheus.yml and check it with 'promtool check rules'.

The rules file is rendered for your rollout: --sync-mode is the FSM sync
mode the SyncModeUnexpected alert expects of every replica (the plan's
expect_sync_mode). For --target lanectl, --flag-diverged-for is how long
LanectlFlagStateDiverged lets the flag differ across replicas before it
fires: a soak stage plus the time an advance takes. Stock elastickv exports
nothing that shows the flag, so its rules have no such alert and refuse
the flag.`,
		Example: `  lanectl dashboards export ./lanectl-dashboards
  lanectl dashboards export ./lanectl-dashboards --sync-mode nosync --flag-diverged-for 50h
  lanectl dashboards export --target elastickv ./elastickv-dashboards
  lanectl dashboards export /etc/grafana/provisioning/dashboards/lanectl
  lanectl dashboards export /tmp/d && sudo cp /tmp/d/lanes.rules.yml /etc/prometheus/rules/`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return usageErrorf(cmd, "want exactly one argument, the directory to write into (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			set, err := dashboards.ForTarget(target)
			if err != nil {
				return usageErrorf(cmd, "--target %q: %w", target, err)
			}
			opts.Set = set
			mode, warning := lanes.ParseSyncMode(syncMode)
			if warning != "" || strings.TrimSpace(syncMode) == "" {
				return usageErrorf(cmd, "--sync-mode %q: want sync or nosync", syncMode)
			}
			d, err := model.ParseDuration(divergedFor)
			if err != nil || d <= 0 {
				return usageErrorf(cmd, "--flag-diverged-for %q: want a positive duration such as 26h or 3d", divergedFor)
			}
			if cmd.Flags().Changed("flag-diverged-for") && !set.SeesFlag {
				return usageErrorf(cmd, "--flag-diverged-for: the %s target's metrics do not show the flag, so its rules have no flag alert", set.Target)
			}
			opts.Rules = dashboards.RuleOptions{SyncMode: mode, FlagDivergedFor: d}
			if runF != nil {
				return runF(opts)
			}
			return runDashboardsExport(opts)
		},
	}
	cmd.Flags().StringVar(&target, "target", targets.Default, "what the replicas are: "+strings.Join(targets.Names(), " or "))
	cmd.Flags().StringVar(&syncMode, "sync-mode", defaults.SyncMode.String(), "FSM sync mode every replica is expected to run: sync or nosync")
	cmd.Flags().StringVar(&divergedFor, "flag-diverged-for", dashboards.FormatRuleDuration(defaults.FlagDivergedFor), "how long the flag may differ across replicas before LanectlFlagStateDiverged fires (lanectl target only)")
	return cmd
}

func runDashboardsExport(opts *DashboardsExportOptions) error {
	paths, err := opts.Set.Export(opts.Dir, opts.Rules)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if _, err := fmt.Fprintln(opts.Streams.Out, p); err != nil {
			return err
		}
	}
	return nil
}
