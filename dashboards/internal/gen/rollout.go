package gen

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/lanectl/lanectl/targets"
)

// RolloutUID is the stable uid of the rollout/soak dashboard.
const RolloutUID = "lanectl-lanes-rollout"

// Selectors of the canary and of its baselines. The baseline excludes the
// canary so picking "All" baselines still compares it against the others.
const (
	canarySel   = `job=~"$job", node_id="$canary"`
	baselineSel = `job=~"$job", node_id=~"$baseline", node_id!="$canary"`
)

// comparison is one soak signal drawn for the canary and its baselines.
type comparison struct {
	title, description, unit string
	// threshold, when set, is the gate's fixed limit, drawn as a red line.
	threshold *float64
	// expr returns the PromQL for the replicas matched by selector, one
	// series per node_id.
	expr func(selector string) string
}

// Rollout is the dashboard for a soak in progress: the canary next to its
// baselines for each signal the default soak gates judge, so an operator
// sees what `lanectl soak` will decide and why.
func Rollout() (dashboard.Dashboard, error) {
	b := newBoard(RolloutUID, "lanectl / Rollout soak: canary vs baseline",
		"A soak in progress: the canary replica (thick red) next to its baseline replicas for each signal the soak gates judge. lanectl soak decides from the same metrics; this shows the why.",
		[]string{"lanectl", "raft", "rollout"})
	rolloutAnnotations(b, `job=~"$job"`)
	b.WithVariable(datasourceVariable())
	b.WithVariable(jobVariable())
	nodeQuery := fmt.Sprintf(`label_values(%s{job=~"$job"}, node_id)`, presenceMetric)
	b.WithVariable(labelValuesVariable(VarCanary, "Canary", nodeQuery).
		Description("The replica being soaked (the one with the flag just enabled)."))
	b.WithVariable(labelValuesVariable(VarBaseline, "Baselines", nodeQuery).
		Description("Replicas the canary is compared against; the canary itself is always left out.").
		Multi(true).
		IncludeAll(true).
		Current(allSelected()))

	b.row("flag and sync_mode")
	b.panel(flagTimeline().
		Title("flag: four-lane dispatcher, canary and baselines").
		Description("Which layout each replica runs. The flag gate fails unless the canary ran four-lane and the baselines legacy for the whole window: a canary that is not four-lane is not being soaked at all, and one that flips back and forth was restarted (start the soak window after its last restart).").
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (%s{%s})", targets.LanectlLanesEnabled, canarySel), "canary {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id) (%s{%s})", targets.LanectlLanesEnabled, baselineSel), "baseline {{node_id}}")).
		Span(12).Height(6))
	b.panel(syncModeTimeline().
		Title("sync_mode: FSM sync mode, canary and baselines").
		Description("Whether each replica fsyncs applied entries (sync) or not (nosync). The sync_mode gate fails when any replica ran in another mode than the plan's expect_sync_mode for part of the window: a soak that compares a nosync canary with sync baselines measures disks, not lanes.").
		WithTarget(series("A", fmt.Sprintf(`max by (node_id) (%s{%s, mode="sync"})`, targets.LanectlSyncMode, canarySel), "canary {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf(`max by (node_id) (%s{%s, mode="sync"})`, targets.LanectlSyncMode, baselineSel), "baseline {{node_id}}")).
		Span(12).Height(6))

	b.row("Gate signals: canary vs baseline")
	for _, c := range rolloutComparisons() {
		b.panel(c.panel())
	}

	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("rollout dashboard: %w", err)
	}
	return d, nil
}

// panel draws the canary (thick red) and its baselines, with the gate's
// fixed limit as a red line when it has one.
func (c comparison) panel() *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(c.title).
		Description(c.description).
		Datasource(datasource()).
		WithTarget(series("A", c.expr(canarySel), "canary {{node_id}}")).
		WithTarget(series("B", c.expr(baselineSel), "baseline {{node_id}}")).
		Unit(c.unit).
		Min(0).
		OverrideByQuery("A", emphasise()).
		Legend(tableLegend("max", "mean", "lastNotNull")).
		Tooltip(sharedTooltip()).
		Span(12).Height(8)
	if c.threshold != nil {
		p.Thresholds(thresholds("transparent", step(*c.threshold, "red"))).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeLine))
	}
	return p
}

// rateOf is the per-replica rate of a counter over the selected replicas
// and extra matchers.
func rateOf(metric, selector, extra string) string {
	if extra != "" {
		selector += ", " + extra
	}
	return fmt.Sprintf("sum by (node_id) (rate(%s{%s}[$__rate_interval]))", metric, selector)
}

// ratio is bad / (bad + good), per replica, over the selected replicas.
func ratio(bad, good, selector, extra string) string {
	b := rateOf(bad, selector, extra)
	return fmt.Sprintf("%s / (%s + %s)", b, b, rateOf(good, selector, extra))
}

// rolloutComparisons mirror the lanectl target's soak gates
// (targets.Lanectl().Gates) that compare a canary with its baselines; each title starts with the gate's
// name so the gate table of lanectl soak and the dashboard line up.
func rolloutComparisons() []comparison {
	return []comparison{
		{
			title:       "heartbeat_drops: heartbeat-lane drops",
			description: "Heartbeat-lane messages dropped per second. The gate fails on any heartbeat-lane drop on the canary during the soak window: the four-lane layout exists so heartbeats never queue behind bulk traffic. Baselines on the legacy layout may drop here under snapshot load; that is the problem being fixed.",
			unit:        units.MessagesPerSecond,
			expr: func(s string) string {
				return rateOf(targets.LanectlDropped, s, `lane="heartbeat"`)
			},
		},
		{
			title:       "replication_drop_ratio: replication/other-lane drops",
			description: "Share of replication and other-lane messages (normal lane on legacy replicas) dropped before the transport. The gate fails when the canary's ratio over the window is more than 10% (plus 0.1 point) worse than the worst baseline's: its lanes are too small for the traffic or a lane worker stalls.",
			unit:        units.PercentUnit,
			expr: func(s string) string {
				return ratio(targets.LanectlDropped, targets.LanectlSent, s, `lane=~"replication|other|normal"`)
			},
		},
		{
			title:       "dispatch_error_ratio: transport errors",
			description: "Share of sends the transport failed, all lanes. The gate fails when the canary's ratio is more than 10% (plus 0.1 point) worse than the worst baseline's; errors on the canary alone point at its per-lane connections rather than at a peer that is down for everyone.",
			unit:        units.PercentUnit,
			expr: func(s string) string {
				return ratio(targets.LanectlErrors, targets.LanectlSent, s, "")
			},
		},
		{
			title:       "leader_changes: leader changes seen",
			description: "Leader changes seen per interval. The gate fails when the canary saw more over the window than the worst baseline plus one (its own restart). A canary that sees elections its baselines do not is losing heartbeats.",
			unit:        units.Short,
			expr: func(s string) string {
				return fmt.Sprintf("sum by (node_id) (increase(%s{%s}[$__rate_interval]))", targets.LanectlLeaderChanges, s)
			},
		},
		{
			title:       "last_contact: follower last contact",
			description: "Seconds since each replica last heard from the leader (0 on the leader). The gate fails when the canary, as a follower, ever went longer than 1s (the red line) without contact: it was close to starting an election.",
			unit:        units.Seconds,
			threshold:   cog.ToPtr(1.0),
			expr: func(s string) string {
				return fmt.Sprintf("max by (node_id) (%s{%s})", targets.LanectlLastContact, s)
			},
		},
		{
			title:       "restarts: process restarts",
			description: "Restarts of each replica's process per interval, from changes of its start time. The gate fails on any restart of the canary inside the soak window; the restart that picked up the flag comes before the window starts. A canary that restarts is crashing on the new code path.",
			unit:        units.Short,
			expr: func(s string) string {
				return fmt.Sprintf("sum by (node_id) (changes(%s{%s}[$__rate_interval]))", targets.LanectlProcessStartTime, s)
			},
		},
		{
			title:       "Heartbeat-lane queue wait p99 (context, not a gate)",
			description: "99th percentile wait of heartbeat-lane messages before sending. With its own lane the canary's should sit at or below the baselines'; a canary whose heartbeats wait longer still has them queued behind something, and heartbeat drops or elections tend to follow.",
			unit:        units.Seconds,
			expr: func(s string) string {
				return fmt.Sprintf(`histogram_quantile(0.99, sum by (node_id, le) (rate(%s_bucket{%s, lane="heartbeat"}[$__rate_interval])))`, targets.LanectlQueueWait, s)
			},
		},
	}
}
