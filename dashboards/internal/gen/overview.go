package gen

import (
	"fmt"
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/lanectl/lanectl/targets"
)

// OverviewUID is the stable uid of the overview dashboard: links and
// provisioning keep working across re-imports.
const OverviewUID = "lanectl-lanes-overview"

// replicas selects the replicas picked in the $job and $node_id variables.
const replicas = `job=~"$job", node_id=~"$node_id"`

// sel is metric{replicas[, extra]}.
func sel(metric, extra string) string {
	if extra == "" {
		return fmt.Sprintf("%s{%s}", metric, replicas)
	}
	return fmt.Sprintf("%s{%s, %s}", metric, replicas, extra)
}

// Overview is the day-to-day dashboard of the dispatcher and raft on every
// replica: flag and sync mode, per-lane drops, errors, queues and waits, and
// the raft health that heartbeat loss shows up in.
func Overview() (dashboard.Dashboard, error) {
	b := newBoard(OverviewUID, "lanectl / Raft dispatcher lanes",
		"Per-lane health of the elastickv raft dispatcher on every replica: which replicas run the four-lane layout, drops and errors by lane (heartbeat first), queue depth and wait, and the raft signals (elections, follower contact, lag) that show when heartbeats are being lost.",
		[]string{"lanectl", "raft", "elastickv"})
	rolloutAnnotations(b, replicas)
	b.WithVariable(datasourceVariable())
	b.WithVariable(jobVariable())
	nodeQuery := fmt.Sprintf(`label_values(%s{job=~"$job"}, node_id)`, presenceMetric)
	b.WithVariable(labelValuesVariable(VarNodeID, "Replica", nodeQuery).
		Description("Replicas (the node_id label every series carries).").
		Multi(true).
		IncludeAll(true).
		Current(allSelected()))

	b.row("Rollout state")
	b.panel(flagTimeline().
		Title("Four-lane dispatcher (flag) per replica").
		Description(targets.LanectlLanesEnabled + ": four-lane when ELASTICKV_RAFT_DISPATCHER_LANES is on, legacy otherwise. During a rollout replicas differ on purpose, one stage at a time; a mix that outlives a soak stage means a rollout stalled half-way (advance it or roll it back), and a replica flipping back and forth means it is restarting with a different environment than planned.").
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s)", sel(targets.LanectlLanesEnabled, "")), "{{node_id}}")).
		Span(12).Height(6))
	b.panel(syncModeTimeline().
		Title("FSM sync mode per replica").
		Description(targets.LanectlSyncMode + ": whether the replica fsyncs every applied entry (sync) or not (nosync). All replicas should run the mode the rollout plan expects (expect_sync_mode, usually sync). A nosync replica can lose acknowledged writes on power loss, and a soak compared across different modes compares disks, not lanes.").
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s)", sel(targets.LanectlSyncMode, `mode="sync"`)), "{{node_id}}")).
		Span(12).Height(6))

	b.row("Drops and errors by lane")
	b.panel(timeseries.NewPanelBuilder().
		Title("Heartbeat-lane drops per replica").
		Description("Heartbeats, votes and other liveness messages dropped before reaching the transport because the heartbeat lane was full or the peer was unknown. Anything above zero is a liveness threat: followers that miss heartbeats start elections, which is exactly what the four-lane layout exists to prevent. Alert LanectlHeartbeatLaneDrops pages on it.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id) (rate(%s[$__rate_interval]))", sel(targets.LanectlDropped, `lane="heartbeat"`)), "{{node_id}}")).
		Unit(units.MessagesPerSecond).
		Min(0).
		ColorScheme(fixedColor("red")).
		LineWidth(2).
		FillOpacity(20).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(24).Height(7))
	b.panel(timeseries.NewPanelBuilder().
		Title("Drops by lane and replica").
		Description("Messages dropped before the transport, by lane (heartbeat drawn thick red). Snapshot-lane drops are routine back-pressure while a multi-MiB snapshot is in flight; sustained replication or other drops slow followers down because raft must resend; any heartbeat drop is the alarm.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, lane) (rate(%s[$__rate_interval]))", sel(targets.LanectlDropped, "")), "{{node_id}} {{lane}}")).
		Unit(units.MessagesPerSecond).
		Min(0).
		OverrideByRegexp(".* heartbeat$", emphasise()).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Transport errors by lane and replica").
		Description("Sends the transport reported as failed, by lane (heartbeat drawn thick red). Short bursts while a peer restarts are expected during a rollout; errors that persist for minutes mean a peer is unreachable or its connection keeps failing, and raft is treating it as down.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, lane) (rate(%s[$__rate_interval]))", sel(targets.LanectlErrors, "")), "{{node_id}} {{lane}}")).
		Unit(units.MessagesPerSecond).
		Min(0).
		OverrideByRegexp(".* heartbeat$", emphasise()).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Sent by lane and replica").
		Description("Messages handed to the transport successfully, by lane: the traffic that the drop and error rates above should be read against. A lane whose sent rate falls to zero while raft is busy is stalled; a heartbeat lane that stops sending on the leader means followers are about to time out.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, lane) (rate(%s[$__rate_interval]))", sel(targets.LanectlSent, "")), "{{node_id}} {{lane}}")).
		Unit(units.MessagesPerSecond).
		Min(0).
		Legend(tableLegend("mean", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(24).Height(8))

	b.row("Queues")
	b.panel(timeseries.NewPanelBuilder().
		Title("Queue depth by lane (deepest peer)").
		Description("Messages waiting in each lane, for the peer with the deepest queue. The heartbeat lane should stay near zero. A lane sitting near its buffer size (lanectl lanes prints them) is about to drop; a replication lane that stays deep means a follower or the network cannot keep up.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id, lane) (%s)", sel(targets.LanectlQueueDepth, "")), "{{node_id}} {{lane}}")).
		Unit(units.Short).
		Min(0).
		OverrideByRegexp(".* heartbeat$", emphasise()).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(24).Height(8))
	b.panel(queueWaitQuantile("p99", 0.99, "99th percentile of the time a message waits in its lane before the transport starts sending it. A heartbeat-lane p99 approaching the raft heartbeat interval means heartbeats arrive late and followers may campaign; in the legacy layout a long normal-lane wait while a snapshot is sent is the head-of-line blocking the four-lane layout removes."))
	b.panel(queueWaitQuantile("p50", 0.5, "Median time a message waits in its lane before sending starts. It should be far below the p99; a median that rises with the p99 means the whole lane is slow (worker or transport saturated), not just the occasional large message."))
	b.panel(heatmap.NewPanelBuilder().
		Title("Queue wait distribution, heartbeat lane").
		Description("How long heartbeat-lane messages waited before sending, all selected replicas. The mass should sit in the lowest buckets; a band creeping upwards towards the heartbeat interval is the early sign of the heartbeat loss the lanes are meant to prevent.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (le) (increase(%s[$__rate_interval]))", sel(targets.LanectlQueueWait+"_bucket", `lane="heartbeat"`)), "{{le}}").
			Format("heatmap")).
		Unit(units.Seconds).
		Calculate(false).
		YAxis(heatmap.NewYAxisConfigBuilder().Unit(units.Seconds)).
		CellGap(1).
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true)).
		Span(24).Height(8))

	b.row("Raft")
	b.panel(timeseries.NewPanelBuilder().
		Title("Leader changes").
		Description("Leader changes each replica saw per interval. Zero in steady state; one per deliberate restart of the leader during a rollout. Bursts mean repeated elections: lost heartbeats, an overloaded leader or a partitioned replica (alert LanectlLeaderChangesSpiking).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id) (increase(%s[$__rate_interval]))", sel(targets.LanectlLeaderChanges, "")), "{{node_id}}")).
		Unit(units.Short).
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Legend(tableLegend("sum", "max")).
		Tooltip(sharedTooltip()).
		Span(8).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Raft term and leader").
		Description("Current raft term per replica, and which replica is leader. Replicas should agree on the term; a term that keeps climbing means elections keep happening, and a replica whose term runs ahead of the others is campaigning without winning (usually it cannot hear the leader).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s)", sel(targets.LanectlTerm, "")), "term {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id) (%s) == 1", sel(targets.LanectlIsLeader, "")), "leader {{node_id}}")).
		Unit(units.NoUnit).
		Decimals(0).
		OverrideByQuery("B", []dashboard.DynamicConfigValue{
			{Id: "custom.drawStyle", Value: "points"},
			{Id: "custom.axisPlacement", Value: "right"},
			{Id: "custom.pointSize", Value: 8},
		}).
		Legend(tableLegend("lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(8).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Max follower last contact").
		Description("Seconds since a follower last heard from the leader, worst follower per job (the leader reports 0). It should stay below a few heartbeat intervals; as it approaches the election timeout the follower is about to campaign, which is what lost or delayed heartbeats look like from the receiving side.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (job) (%s)", sel(targets.LanectlLastContact, "")), "worst follower {{job}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id) (%s)", sel(targets.LanectlLastContact, "")), "{{node_id}}")).
		Unit(units.Seconds).
		Min(0).
		OverrideByQuery("A", emphasise()).
		Thresholds(thresholds("green", step(0.5, "orange"), step(1, "red"))).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(8).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Commit / applied lag").
		Description("Raft entries committed but not yet applied to the state machine on each replica, and entries a replica's commit index trails the most advanced replica by. Apply lag that grows means the state machine (often fsync in sync mode) cannot keep up; commit lag that grows on one replica means it is not receiving appends fast enough (replication lane drops, slow network).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s - %s)", sel(targets.LanectlCommitIndex, ""), sel(targets.LanectlAppliedIndex, "")), "apply lag {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id) (max by (job, group) (%s) - on (job, group) group_right () %s)", sel(targets.LanectlCommitIndex, ""), sel(targets.LanectlCommitIndex, "")), "commit lag {{node_id}}")).
		Unit(units.Short).
		Min(0).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(24).Height(8))

	b.row("Scraping")
	b.panel(scrapeTargetsUp("Targets of the selected jobs that Prometheus scraped successfully on its last attempt, out of all of them. Anything below the replica count means a replica is down or unreachable, and every panel above is missing its data: missing data is never a pass."))

	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("overview dashboard: %w", err)
	}
	return d, nil
}

// queueWaitQuantile is a per-lane queue-wait quantile panel from the
// dispatcher's histogram, heartbeat lane emphasised.
func queueWaitQuantile(name string, q float64, description string) *timeseries.PanelBuilder {
	expr := fmt.Sprintf("histogram_quantile(%s, sum by (node_id, lane, le) (rate(%s[$__rate_interval])))",
		strconv.FormatFloat(q, 'f', -1, 64), sel(targets.LanectlQueueWait+"_bucket", ""))
	return timeseries.NewPanelBuilder().
		Title("Queue wait "+name+" by lane").
		Description(description).
		Datasource(datasource()).
		WithTarget(series("A", expr, "{{node_id}} {{lane}}")).
		Unit(units.Seconds).
		Min(0).
		OverrideByRegexp(".* heartbeat$", emphasise()).
		Legend(tableLegend("max", "mean")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8)
}
