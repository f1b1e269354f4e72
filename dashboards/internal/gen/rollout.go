package gen

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
	"github.com/grafana/grafana-foundation-sdk/go/units"
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
	b.WithVariable(datasourceVariable())
	b.WithVariable(jobVariable())
	nodeQuery := fmt.Sprintf(`label_values(%s{job=~"$job"}, node_id)`, presenceMetric)
	b.WithVariable(labelValuesVariable(VarCanary, "Canary", nodeQuery).
		Description("The replica being soaked (the one with the flag just enabled)."))
	b.WithVariable(labelValuesVariable(VarBaseline, "Baselines", nodeQuery).
		Description("Replicas the canary is compared against; the canary itself is always left out.").
		Multi(true).
		IncludeAll(true))

	b.row("Flag")
	b.panel(statetimeline.NewPanelBuilder().
		Title("Four-lane dispatcher (flag): canary and baselines").
		Description("Which layout each replica runs. During a soak the canary shows four-lane and the baselines the layout they had before; a canary that is not four-lane is not being soaked at all, and a canary that flips back and forth was restarted (the soak window should start after its last restart).").
		Datasource(datasource()).
		WithTarget(series("A", fmt.Sprintf("max by (node_id) (elastickv_raft_dispatcher_lanes_enabled{%s})", canarySel), "canary {{node_id}}")).
		WithTarget(series("B", fmt.Sprintf("max by (node_id) (elastickv_raft_dispatcher_lanes_enabled{%s})", baselineSel), "baseline {{node_id}}")).
		Unit(units.NoUnit).
		Min(0).Max(1).
		Mappings(valueText(map[string]dashboard.ValueMappingResult{
			"0": mapped("legacy (2 lanes)", "blue", 0),
			"1": mapped("four-lane", "green", 1),
		})).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		Thresholds(thresholds("blue", step(1, "green"))).
		Tooltip(sharedTooltip()).
		Span(24).Height(5))

	b.row("Gate signals: canary vs baseline")
	for _, c := range rolloutComparisons() {
		b.panel(timeseries.NewPanelBuilder().
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
			Span(12).Height(8))
	}

	d, err := b.Build()
	if err != nil {
		return dashboard.Dashboard{}, fmt.Errorf("rollout dashboard: %w", err)
	}
	return d, nil
}

func rate(metric, extra string) func(string) string {
	return func(s string) string {
		if extra != "" {
			s += ", " + extra
		}
		return fmt.Sprintf("sum by (node_id) (rate(%s{%s}[$__rate_interval]))", metric, s)
	}
}

func rolloutComparisons() []comparison {
	return []comparison{
		{
			title:       "Heartbeat-lane drops",
			description: "Heartbeat-lane messages dropped per second. The gate fails on any heartbeat drop on the canary: the four-lane layout exists so that heartbeats are never queued behind bulk traffic.",
			unit:        units.MessagesPerSecond,
			expr:        rate("elastickv_raft_dispatch_dropped_total", `lane="heartbeat"`),
		},
		{
			title:       "Drops, all lanes but snapshot",
			description: "Messages dropped per second outside the snapshot lane (snapshot drops are routine back-pressure). The canary should not drop more than its baselines; more means its lanes are too small for the traffic or a worker stalls.",
			unit:        units.MessagesPerSecond,
			expr:        rate("elastickv_raft_dispatch_dropped_total", `lane!="snapshot"`),
		},
		{
			title:       "Transport errors",
			description: "Failed sends per second, all lanes. The canary should look like its baselines; more errors on the canary alone point at its new per-lane connections.",
			unit:        units.MessagesPerSecond,
			expr:        rate("elastickv_raft_dispatch_errors_total", ""),
		},
		{
			title:       "Heartbeat-lane queue wait p99",
			description: "99th percentile wait of heartbeat-lane messages before sending. With its own lane the canary's should be at or below the baselines'; a higher value means heartbeats still wait behind something.",
			unit:        units.Seconds,
			expr: func(s string) string {
				return fmt.Sprintf(`histogram_quantile(0.99, sum by (node_id, le) (rate(elastickv_raft_dispatch_queue_wait_seconds_bucket{%s, lane="heartbeat"}[$__rate_interval])))`, s)
			},
		},
		{
			title:       "Leader changes",
			description: "Leader changes seen per interval. A canary that sees elections its baselines do not (or causes them when it leads) is losing heartbeats.",
			unit:        units.Short,
			expr: func(s string) string {
				return fmt.Sprintf("sum by (node_id) (increase(elastickv_raft_leader_changes_seen_total{%s}[$__rate_interval]))", s)
			},
		},
		{
			title:       "Follower last contact",
			description: "Seconds since each replica last heard from the leader (0 on the leader). A canary follower whose last contact runs above its baselines' is receiving heartbeats late.",
			unit:        units.Seconds,
			expr: func(s string) string {
				return fmt.Sprintf("max by (node_id) (elastickv_raft_last_contact_seconds{%s})", s)
			},
		},
	}
}
