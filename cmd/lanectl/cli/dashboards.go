package cli

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/dashboards"
	"github.com/lanectl/lanectl/lanes"
)

// NewCmdDashboards builds 'lanectl dashboards', the parent of export.
func NewCmdDashboards(streams *IOStreams, runExportF func(*DashboardsExportOptions) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Grafana dashboards and Prometheus alert rules for the dispatcher lanes",
		Long: `lanectl ships the Grafana dashboards and Prometheus rules that show the
numbers its soak gates judge:

  lanes-overview.json  per-lane drops (heartbeat first), errors, queue depth
                       and wait, flag and sync mode per replica, elections,
                       follower last contact, commit/applied lag
  lanes-rollout.json   a soak in progress: canary vs baselines for each gate
  lanes.rules.yml      recording rules, and alerts for heartbeat-lane drops,
                       a rollout stalled half-way, an unexpected sync mode,
                       rising transport errors and election storms

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
	// Rules are the values lanes.rules.yml is rendered with.
	Rules dashboards.RuleOptions
}

// NewCmdDashboardsExport builds 'lanectl dashboards export DIR'. runF
// replaces runDashboardsExport in tests.
func NewCmdDashboardsExport(streams *IOStreams, runF func(*DashboardsExportOptions) error) *cobra.Command {
	opts := &DashboardsExportOptions{Streams: streams}
	defaults := dashboards.DefaultRuleOptions()
	var syncMode, divergedFor string
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write the dashboards and alert rules into DIR",
		Long: `Write lanes-overview.json, lanes-rollout.json and lanes.rules.yml into DIR
(created if missing; files of the same name are replaced) and print each path.

Import the JSON into Grafana (Dashboards > New > Import, or a provisioning
directory) and pick your Prometheus data source: the dashboards use a
$datasource variable and carry no data source UID. Add lanes.rules.yml to
rule_files in prometheus.yml and check it with 'promtool check rules'.

Two alerts depend on your rollout, and the rules file is rendered for it:
--sync-mode is the FSM sync mode LanectlSyncModeUnexpected expects of every
replica (the plan's expect_sync_mode), and --flag-diverged-for is how long
LanectlFlagStateDiverged lets the flag differ across replicas before it
fires: a soak stage plus the time an advance takes.`,
		Example: `  lanectl dashboards export ./lanectl-dashboards
  lanectl dashboards export ./lanectl-dashboards --sync-mode nosync --flag-diverged-for 50h
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
			mode, warning := lanes.ParseSyncMode(syncMode)
			if warning != "" || strings.TrimSpace(syncMode) == "" {
				return usageErrorf(cmd, "--sync-mode %q: want sync or nosync", syncMode)
			}
			d, err := model.ParseDuration(divergedFor)
			if err != nil || d <= 0 {
				return usageErrorf(cmd, "--flag-diverged-for %q: want a positive duration such as 26h or 3d", divergedFor)
			}
			opts.Rules = dashboards.RuleOptions{SyncMode: mode, FlagDivergedFor: d}
			if runF != nil {
				return runF(opts)
			}
			return runDashboardsExport(opts)
		},
	}
	cmd.Flags().StringVar(&syncMode, "sync-mode", defaults.SyncMode.String(), "FSM sync mode every replica is expected to run: sync or nosync")
	cmd.Flags().StringVar(&divergedFor, "flag-diverged-for", dashboards.FormatRuleDuration(defaults.FlagDivergedFor), "how long the flag may differ across replicas before LanectlFlagStateDiverged fires")
	return cmd
}

func runDashboardsExport(opts *DashboardsExportOptions) error {
	paths, err := dashboards.Export(opts.Dir, opts.Rules)
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
