package gen

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/targets"
)

// ElastickvRolloutUID is the stable uid of the stock elastickv soak
// dashboard.
const ElastickvRolloutUID = "lanectl-elastickv-rollout"

// ElastickvRollout is the dashboard for a soak on stock elastickv: the
// canary node next to its baselines for each signal the elastickv soak
// judges, each summed (or, for last contact, the worst) over the node's
// raft groups, as the soak compares nodes rather than groups.
func ElastickvRollout() (dashboard.Dashboard, error) {
	b := newBoard(ElastickvRolloutUID, "lanectl / elastickv soak: canary vs baseline (stock metrics)",
		"A soak on stock elastickv: the canary node (thick red) next to its baseline nodes for each signal the soak judges, over all raft groups of a node. lanectl soak --target elastickv decides from the same metrics; this shows the why. The flag itself cannot be charted from stock elastickv's metrics.",
		[]string{"lanectl", "raft", "elastickv", "rollout"})
	restartAnnotation(b, `job=~"$job"`)
	b.WithVariable(datasourceVariable())
	b.WithVariable(elastickvJobVariable())
	nodeQuery := fmt.Sprintf(`label_values(%s{job=~"$job"}, node_id)`, elastickvPresence)
	b.WithVariable(labelValuesVariable(VarCanary, "Canary", nodeQuery).
		Description("The node being soaked (the one with the flag just enabled)."))
	b.WithVariable(labelValuesVariable(VarBaseline, "Baselines", nodeQuery).
		Description("Nodes the canary is compared against; the canary itself is always left out.").
		Multi(true).
		IncludeAll(true).
		Current(allSelected()))

	b.row("flag and sync mode")
	b.panel(text.NewPanelBuilder().
		Title("The flag: not in the metrics").
		Description("Why this soak dashboard has no flag panel, and how the soak decides the flag instead.").
		Mode(text.TextModeMarkdown).
		Content(fmt.Sprintf(`**The flag cannot be charted.** Stock elastickv exports nothing that shows whether %s is set: the canary and the baselines export the same metric names either way. The soak decides the flag from the rollout journal and from the plan's `+"`commands.read`"+`, run on the node when the flag was enabled and again when the soak is judged; `+"`lanectl soak`"+` says so in the gate's reason.

**Drops have no lane.** A canary that drops heartbeats and one under snapshot back-pressure look the same in the drops panel; its last contact and leader changes tell them apart.`, lanes.FlagEnv)).
		Span(12).Height(6))
	b.panel(syncModeTimeline().
		Title("Sync mode, canary and baselines").
		Description("Whether each node fsyncs applied entries (sync) or not (nosync). A soak that compares a nosync canary with sync baselines measures disks, not the flag: every node should run the plan's expect_sync_mode for the whole window (or follow it, for a rollout of ELASTICKV_FSM_SYNC_MODE itself).").
		WithTarget(series("A", fmt.Sprintf(`max by (node_id) (%s{%s, mode="sync"})`, targets.ElastickvSyncMode, canarySel), "canary {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf(`max by (node_id) (%s{%s, mode="sync"})`, targets.ElastickvSyncMode, baselineSel), "baseline {{node_id}}")).
		Span(12).Height(6))

	b.row("Soak signals: canary vs baseline, over all raft groups")
	for _, c := range elastickvComparisons() {
		b.panel(c.panel())
	}

	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("elastickv rollout dashboard: %w", err)
	}
	return d, nil
}

// elastickvComparisons are the signals the elastickv soak compares, per
// node over its raft groups.
func elastickvComparisons() []comparison {
	return []comparison{
		{
			title:       "Drops, all groups",
			description: "Raft messages the node dropped before the transport per second, summed over its raft groups (all lanes: stock elastickv has no lane label). The soak fails a canary that drops more than the worst baseline; a canary whose drops come with rising last contact or leader changes is losing heartbeats.",
			unit:        units.MessagesPerSecond,
			expr: func(s string) string {
				return rateOf(targets.ElastickvDropped, s, "")
			},
		},
		{
			title:       "Dispatch errors per outbound message, all groups",
			description: "Dispatch errors over the regular raft messages the outbound streams accepted, summed over the node's groups (stock elastickv has no sent counter). The soak fails a canary whose ratio is worse than the worst baseline's; errors on the canary alone point at its own connections rather than at a peer that is down for everyone.",
			unit:        units.PercentUnit,
			expr: func(s string) string {
				return fmt.Sprintf("%s / %s", rateOf(targets.ElastickvErrors, s, ""), rateOf(targets.ElastickvSendStream, s, ""))
			},
		},
		{
			title:       "Step queue full, all groups",
			description: "Incoming raft messages the node rejected because its step queue was full, per second, over its groups. Zero in steady state; a canary that rejects what its baselines accept cannot keep up with its peers.",
			unit:        units.MessagesPerSecond,
			expr: func(s string) string {
				return rateOf(targets.ElastickvStepQueueFull, s, "")
			},
		},
		{
			title:       "Leader changes seen, all groups",
			description: "Leader changes the node saw per interval, summed over its groups. A restart of the canary costs one per group it led; a canary that sees elections its baselines do not is losing heartbeats.",
			unit:        units.Short,
			expr: func(s string) string {
				return fmt.Sprintf("sum by (node_id) (increase(%s{%s}[$__rate_interval]))", targets.ElastickvLeaderChanges, s)
			},
		},
		{
			title:       "Worst last contact over groups",
			description: "Seconds since the node, as a follower, last heard from a leader, in its worst raft group (a leader reports 0). The soak fails a canary that went longer than 1s (the red line) without contact: it was close to starting an election, which is what lost heartbeats look like from the receiving side.",
			unit:        units.Seconds,
			threshold:   cog.ToPtr(1.0),
			expr: func(s string) string {
				return fmt.Sprintf("max by (node_id) (%s{%s})", targets.ElastickvLastContact, s)
			},
		},
		{
			title:       "Outbound raft messages, all groups (context, not a gate)",
			description: "Regular raft messages the node's outbound streams accepted per second, over its groups: the traffic drops and errors are judged against. A canary with far less traffic than its baselines leads fewer groups (or none), so its ratios carry less weight.",
			unit:        units.MessagesPerSecond,
			expr: func(s string) string {
				return rateOf(targets.ElastickvSendStream, s, "")
			},
		},
	}
}
