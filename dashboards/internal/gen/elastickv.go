package gen

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/text"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/targets"
)

// ElastickvOverviewUID is the stable uid of the stock elastickv overview.
const ElastickvOverviewUID = "lanectl-elastickv-overview"

// VarGroup is the raft group variable of the elastickv dashboards.
const VarGroup = "group"

// groups selects the nodes and raft groups picked in $job, $node_id and
// $group; elastickv's raft series carry the group label.
const groups = `job=~"$job", node_id=~"$node_id", group=~"$group"`

// ekv is metric{groups[, extra]} for elastickv's per-group series.
func ekv(metric, extra string) string {
	if extra == "" {
		return fmt.Sprintf("%s{%s}", metric, groups)
	}
	return fmt.Sprintf("%s{%s, %s}", metric, groups, extra)
}

// ElastickvOverview is the day-to-day dashboard of a stock elastickv
// cluster, from the metrics it exports: dispatch drops and errors, outbound
// traffic, step-queue rejections and raft state, each per raft group where
// the lanectl dashboards break down per lane. What stock elastickv cannot
// show (the flag, the lane of a drop) is said in a text panel rather than
// left to be guessed from an empty graph.
func ElastickvOverview() (dashboard.Dashboard, error) {
	b := newBoard(ElastickvOverviewUID, "lanectl / elastickv raft dispatcher (stock metrics)",
		"Raft dispatcher and raft health of a stock elastickv cluster, per node and raft group: drops, errors (by gRPC code), outbound traffic, step-queue rejections, leader changes, follower contact, node states, leader identity, commit/apply lag, FSM backlog and sync mode. Stock elastickv has no lane label and no gauge of the dispatcher layout; the first panel says what that means.",
		[]string{"lanectl", "raft", "elastickv"})
	restartAnnotation(b, replicas)
	b.WithVariable(datasourceVariable())
	b.WithVariable(elastickvJobVariable())
	nodeQuery := fmt.Sprintf(`label_values(%s{job=~"$job"}, node_id)`, elastickvPresence)
	b.WithVariable(labelValuesVariable(VarNodeID, "Node", nodeQuery).
		Description("Nodes (the node_id label elastickv puts on every series).").
		Multi(true).
		IncludeAll(true).
		Current(allSelected()))
	groupQuery := fmt.Sprintf(`label_values(%s{job=~"$job", node_id=~"$node_id"}, group)`, elastickvPresence)
	b.WithVariable(labelValuesVariable(VarGroup, "Raft group", groupQuery).
		Description("Raft groups (the group label on elastickv's raft series).").
		Multi(true).
		IncludeAll(true).
		Current(allSelected()))

	b.row("Rollout state")
	b.panel(text.NewPanelBuilder().
		Title("What stock elastickv cannot show").
		Description("Why this dashboard has no flag panel and no per-lane panels, and where to look instead.").
		Mode(text.TextModeMarkdown).
		Content(fmt.Sprintf(`**The flag cannot be charted.** Stock elastickv exports no gauge of the dispatcher layout: a node on the legacy layout and one with %s set export the same metric names, and its logs do not say either. Only the running process's environment shows the flag; `+"`lanectl status`"+` shows who has it, from the rollout journal and the plan's `+"`commands.read`"+`.

**No lane label.** The dispatch counters count all lanes of a raft group together, so a dropped heartbeat looks the same as routine back-pressure while a snapshot is sent. Heartbeat loss shows here only through its effects: follower last contact and leader changes per group.

**No process metrics.** A restart shows only as counters starting again from zero (the "Node restarted" annotation).`, lanes.FlagEnv)).
		Span(12).Height(7))
	b.panel(syncModeTimeline().
		Title("FSM sync mode per node").
		Description(targets.ElastickvSyncMode + ": whether the node fsyncs every applied entry (sync) or not (nosync, ELASTICKV_FSM_SYNC_MODE). All nodes should run the mode the rollout plan expects (expect_sync_mode). A nosync node can lose acknowledged writes on power loss, and a soak compared across different modes compares disks, not the flag.").
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s)", sel(targets.ElastickvSyncMode, `mode="sync"`)), "{{node_id}}")).
		Span(12).Height(7))

	b.row("Dispatch drops and errors, per raft group")
	b.panel(ekvRate("Drops by raft group and node", targets.ElastickvDropped,
		"Raft messages dropped before the transport, per raft group (all lanes together: stock elastickv has no lane label). Short bursts while a snapshot is in flight are back-pressure; drops that persist slow followers down because raft must resend, and if they are heartbeats the group's followers start elections (watch last contact and leader changes below). Alert ElastickvDispatchDrops.",
		units.MessagesPerSecond, 12))
	b.panel(ekvRate("Dispatch errors by raft group and node", targets.ElastickvErrors,
		"Sends the transport reported as failed, per raft group. Short bursts while a peer restarts are expected during a rollout; errors that persist for minutes mean a peer is unreachable and raft treats it as down (alert ElastickvDispatchErrorsRising).",
		units.MessagesPerSecond, 12))
	b.panel(timeseries.NewPanelBuilder().
		Title("Dispatch errors by gRPC code and node").
		Description("Dispatch errors split by the gRPC status code the transport returned, all groups: Unavailable means the peer cannot be reached (down or restarting), DeadlineExceeded that it is too slow, ResourceExhausted that it is flow-controlled. elastickv creates a code's series at its first error, so a cluster that never failed a send shows no data here.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, code) (rate(%s[$__rate_interval]))", ekv(targets.ElastickvErrorsByCode, "")), "{{node_id}} {{code}}")).
		Unit(units.MessagesPerSecond).
		Min(0).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(ekvRate("Outbound raft messages by raft group and node", targets.ElastickvSendStream,
		"Regular raft messages the outbound stream accepted, per raft group: the traffic that drops and errors above should be read against (there is no sent counter in stock elastickv). A group whose rate falls to zero on its leader while clients write is stalled.",
		units.MessagesPerSecond, 12))
	b.panel(ekvRate("Step queue full by raft group and node", targets.ElastickvStepQueueFull,
		"Incoming raft messages the node rejected because its raft step queue was full, per raft group. Zero in steady state; anything else means the node cannot process what its peers send (slow disk, overloaded node) and they resend or time out (alert ElastickvStepQueueFull).",
		units.MessagesPerSecond, 24))

	b.row("Raft, per group")
	b.panel(timeseries.NewPanelBuilder().
		Title("Leader changes by raft group").
		Description("Leader changes each node saw per interval, per raft group. Zero in steady state; one per deliberate restart of a group's leader during a rollout. Bursts mean repeated elections: lost heartbeats, an overloaded leader or a partitioned node (alert ElastickvLeaderChangesSpiking).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, group) (increase(%s[$__rate_interval]))", ekv(targets.ElastickvLeaderChanges, "")), "{{node_id}} g{{group}}")).
		Unit(units.Short).
		Min(0).
		DrawStyle(common.GraphDrawStyleBars).
		FillOpacity(60).
		Legend(tableLegend("sum", "max")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Follower last contact by raft group").
		Description("Seconds since a follower last heard from its group's leader (the leader reports 0), per node and group, and the worst follower of each group drawn thick red. As it approaches the election timeout the follower is about to campaign: this is what lost or delayed heartbeats look like from the receiving side, and the only heartbeat signal stock elastickv exports.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (group) (%s)", ekv(targets.ElastickvLastContact, "")), "worst follower g{{group}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id, group) (%s)", ekv(targets.ElastickvLastContact, "")), "{{node_id}} g{{group}}")).
		Unit(units.Seconds).
		Min(0).
		OverrideByQuery("A", emphasise()).
		Thresholds(thresholds("green", step(0.5, "orange"), step(1, "red"))).
		ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLineAndArea)).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Nodes per raft state and group").
		Description("How many of the selected nodes report each raft state (leader, follower, candidate, ...) for each group. A healthy group has exactly one leader and the rest followers; a group with no leader accepts no writes (alert ElastickvGroupWithoutLeader), and candidates that persist mean an election cannot finish.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("count by (group, state) (%s == 1)", ekv(targets.ElastickvLocalState, "")), "g{{group}} {{state}}")).
		Unit(units.Short).
		Decimals(0).
		Min(0).
		OverrideByRegexp("^g.* leader$", emphasise()).
		Legend(tableLegend("min", "max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Leader identity by raft group").
		Description("How many of the selected nodes name each node as the leader of each group. All nodes of a group should agree on one leader; two leader ids for one group at once mean some nodes have not heard of the new leader (a partition or lost heartbeats), and a leader that moves while nothing restarted means elections.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("count by (group, leader_id) (%s == 1)", ekv(targets.ElastickvLeaderIdentity, "")), "g{{group}} led by {{leader_id}}")).
		Unit(units.Short).
		Decimals(0).
		Min(0).
		Legend(tableLegend("min", "max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("Commit / applied lag by raft group").
		Description("Per node and group: raft entries committed but not yet applied (from the commit and applied indexes), and entries a node's commit index trails the most advanced node of the group by. Apply lag that grows means the state machine (often fsync in sync mode) cannot keep up; commit lag that grows on one node means it is not receiving appends fast enough (drops, slow network).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id, group) (%s - %s)", ekv(targets.ElastickvCommitIndex, ""), ekv(targets.ElastickvAppliedIndex, "")), "apply lag {{node_id}} g{{group}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id, group) (max by (job, group) (%s) - on (job, group) group_right () %s)", ekv(targets.ElastickvCommitIndex, ""), ekv(targets.ElastickvCommitIndex, "")), "commit lag {{node_id}} g{{group}}")).
		Unit(units.Short).
		Min(0).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))
	b.panel(timeseries.NewPanelBuilder().
		Title("FSM pending by raft group").
		Description("Entries waiting for the node's state machine, per group. It should stay near zero; a backlog that grows means applying (usually its fsync) is slower than the commit rate, and reads on that node fall behind.").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id, group) (%s)", ekv(targets.ElastickvFSMPending, "")), "{{node_id}} g{{group}}")).
		Unit(units.Short).
		Min(0).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8))

	b.row("Scraping")
	b.panel(scrapeTargetsUp("Targets of the selected jobs that Prometheus scraped successfully on its last attempt, out of all of them. Anything below the node count means a node is down or unreachable (off loopback elastickv's metrics need its --metricsToken as a bearer token), and every panel above is missing its data: missing data is never a pass."))

	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("elastickv overview dashboard: %w", err)
	}
	return d, nil
}

// elastickvPresence is a series every elastickv node exports at every
// scrape, for every raft group: label_values over it lists jobs, nodes and
// groups.
const elastickvPresence = targets.ElastickvLocalState

func elastickvJobVariable() *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, job)", elastickvPresence)
	return labelValuesVariable(VarJob, "Job", q).
		Description("Prometheus job(s) scraping the elastickv nodes.").
		Multi(true).
		IncludeAll(true).
		Current(allSelected())
}

// restartAnnotation marks a node's restart, which stock elastickv shows
// only as its counters starting again from zero.
func restartAnnotation(b *board, selector string) {
	b.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name("Node restarted").
		Datasource(datasource()).
		Enable(true).
		IconColor("orange").
		Expr(fmt.Sprintf("max by (job, node_id) (resets(%s{%s}[$__rate_interval])) > 0", targets.ElastickvSendStream, selector)).
		TitleFormat("{{node_id}} restarted").
		TextFormat("{{node_id}}'s outbound stream counter started again from zero: the node restarted (stock elastickv exports no process start time)").
		TagKeys("node_id").
		Step("1m"))
}

// ekvRate is a panel of a per-group elastickv counter's rate, one series
// per node and group.
func ekvRate(title, counter, description, unit string, span uint32) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("sum by (node_id, group) (rate(%s[$__rate_interval]))", ekv(counter, "")), "{{node_id}} g{{group}}")).
		Unit(unit).
		Min(0).
		Legend(tableLegend("max", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(span).Height(8)
}
