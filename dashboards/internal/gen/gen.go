// Package gen builds lanectl's Grafana dashboards as code with the Grafana
// foundation SDK and renders them to the JSON files committed in dashboards/.
//
// It is the only place the dashboards are edited: the JSON next to it is its
// output (go generate ./dashboards), and a test fails when the two drift
// apart. Every query here names metrics through package targets' constants
// (the lanes-* dashboards the lanectl target's, elastickv-* stock
// elastickv's) and selects replicas through the $job and $node_id variables
// (and raft groups through $group on elastickv); the package must never
// hard-code a datasource UID, a job name or a replica, because the files are
// imported into other people's Grafana as they are.
package gen

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/units"

	"github.com/lanectl/lanectl/targets"
)

// File is one rendered dashboard.
type File struct {
	// Name is the file name under dashboards/, e.g. "lanes-overview.json".
	Name string
	// Data is the dashboard JSON, indented, ending in a newline.
	Data []byte
}

// Files renders every dashboard, in a fixed order.
func Files() ([]File, error) {
	builders := []struct {
		name  string
		build func() (dashboard.Dashboard, error)
	}{
		{"lanes-overview.json", Overview},
		{"lanes-rollout.json", Rollout},
		{"elastickv-overview.json", ElastickvOverview},
		{"elastickv-rollout.json", ElastickvRollout},
	}
	files := make([]File, 0, len(builders))
	for _, b := range builders {
		d, err := b.build()
		if err != nil {
			return nil, fmt.Errorf("build %s: %w", b.name, err)
		}
		data, err := render(d)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", b.name, err)
		}
		files = append(files, File{Name: b.name, Data: data})
	}
	return files, nil
}

// render marshals d the way the committed files are written: two-space
// indent, no HTML escaping (PromQL is full of < and >), trailing newline.
func render(d dashboard.Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Variable names shared by the dashboards and by the tests that substitute
// them.
const (
	VarDatasource = "datasource"
	VarJob        = "job"
	VarNodeID     = "node_id"
	VarCanary     = "canary"
	VarBaseline   = "baseline"
)

// presenceMetric is the series every replica exports from start-up (an
// unlabelled gauge the dispatcher registers), so label_values over it lists
// every job and replica even before any message was sent.
const presenceMetric = targets.LanectlLanesEnabled

// datasource points panels and queries at the $datasource variable, so the
// JSON carries no instance-specific UID.
func datasource() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${" + VarDatasource + "}")}
}

func datasourceVariable() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder(VarDatasource).
		Label("Data source").
		Description("The Prometheus that scrapes the replicas' /metrics.").
		Type("prometheus")
}

func jobVariable() *dashboard.QueryVariableBuilder {
	q := fmt.Sprintf("label_values(%s, job)", presenceMetric)
	return labelValuesVariable(VarJob, "Job", q).
		Description("Prometheus job(s) scraping the replicas.").
		Multi(true).
		IncludeAll(true).
		Current(allSelected())
}

// allSelected is the "All" selection of a multi-value variable: a freshly
// imported dashboard shows every job and replica.
func allSelected() dashboard.VariableOption {
	return dashboard.VariableOption{
		Selected: cog.ToPtr(true),
		Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
		Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
	}
}

// labelValuesVariable is a query variable over label_values that refreshes
// with the time range, so replicas added during a rollout show up.
func labelValuesVariable(name, label, query string) *dashboard.QueryVariableBuilder {
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(query)}).
		Definition(query).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortNaturalAsc)
}

// board wraps the SDK's dashboard builder and numbers panels and rows in
// the order they are added, which keeps ids unique and stable.
type board struct {
	*dashboard.DashboardBuilder
	lastID uint32
}

func newBoard(uid, title, description string, tags []string) *board {
	return &board{DashboardBuilder: dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags(tags).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Link(dashboard.NewDashboardLinkBuilder("lanectl").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{"lanectl"}).
			Icon("external link").
			Tooltip("The other lanectl dashboards, same time range and variables").
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true))}
}

func (b *board) row(title string) {
	b.lastID++
	b.WithRow(dashboard.NewRowBuilder(title).Id(b.lastID))
}

func (b *board) panel(p cog.Builder[dashboard.Panel]) {
	b.lastID++
	b.WithPanel(numbered{Builder: p, id: b.lastID})
}

// numbered gives a panel its id when the dashboard builder builds it; the
// panel builders of different visualisations share no interface for Id.
type numbered struct {
	cog.Builder[dashboard.Panel]
	id uint32
}

func (n numbered) Build() (dashboard.Panel, error) {
	p, err := n.Builder.Build()
	if err != nil {
		return p, err
	}
	p.Id = cog.ToPtr(n.id)
	return p, nil
}

// series is a range query drawn as a time series.
func series(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		Range()
}

// instant is a query whose last value is shown (stat panels).
func instant(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		Datasource(datasource()).
		RefId(ref).
		Expr(expr).
		LegendFormat(legend).
		Instant()
}

// thresholds builds absolute steps: base colour, then colour from value.
func thresholds(base string, steps ...dashboard.Threshold) *dashboard.ThresholdsConfigBuilder {
	all := append([]dashboard.Threshold{{Color: base}}, steps...)
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(all)
}

func step(value float64, color string) dashboard.Threshold {
	return dashboard.Threshold{Value: cog.ToPtr(value), Color: color}
}

func fixedColor(color string) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor(color)
}

// valueText maps exact values to text and colour (flag state, sync mode).
func valueText(texts map[string]dashboard.ValueMappingResult) []dashboard.ValueMapping {
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: texts}}}
}

func mapped(text, color string, index int32) dashboard.ValueMappingResult {
	return dashboard.ValueMappingResult{Text: cog.ToPtr(text), Color: cog.ToPtr(color), Index: cog.ToPtr(index)}
}

// flagTimeline is a state timeline of the lanes gauge
// with its two values named; callers add title, description and queries.
func flagTimeline() *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Datasource(datasource()).
		Unit(units.NoUnit).
		Min(0).Max(1).
		Mappings(valueText(map[string]dashboard.ValueMappingResult{
			"0": mapped("legacy (2 lanes)", "blue", 0),
			"1": mapped("four-lane", "green", 1),
		})).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		Thresholds(thresholds("blue", step(1, "green"))).
		Tooltip(sharedTooltip())
}

// syncModeTimeline is a state timeline of the sync-mode gauge's
// sync row (1 sync, 0 nosync).
func syncModeTimeline() *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Datasource(datasource()).
		Unit(units.NoUnit).
		Min(0).Max(1).
		Mappings(valueText(map[string]dashboard.ValueMappingResult{
			"0": mapped("nosync", "orange", 0),
			"1": mapped("sync", "green", 1),
		})).
		ColorScheme(dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdThresholds)).
		Thresholds(thresholds("orange", step(1, "green"))).
		Tooltip(sharedTooltip())
}

// emphasise draws matching series thick and red: the heartbeat lane, the
// canary.
func emphasise() []dashboard.DynamicConfigValue {
	return []dashboard.DynamicConfigValue{
		{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
		{Id: "custom.lineWidth", Value: 3},
	}
}

func tableLegend(calcs ...string) *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().
		DisplayMode(common.LegendDisplayModeTable).
		Placement(common.LegendPlacementBottom).
		ShowLegend(true).
		Calcs(calcs)
}

func sharedTooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// rolloutAnnotations mark, on every panel, the moments a rollout acts on a
// replica: its flag changing, and any restart (a dispatcher counter
// resetting), so a jump in a graph can be read against them. selector
// picks the replicas, as the panels do.
func rolloutAnnotations(b *board, selector string) {
	b.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name("Flag changed").
		Datasource(datasource()).
		Enable(true).
		IconColor("purple").
		Expr(fmt.Sprintf("changes(%s{%s}[$__rate_interval]) > 0", targets.LanectlLanesEnabled, selector)).
		TitleFormat("{{node_id}}: four-lane flag changed").
		TextFormat("ELASTICKV_RAFT_DISPATCHER_LANES changed on {{node_id}} ({{instance}}): the replica restarted with the four-lane layout switched on or off").
		TagKeys("node_id").
		Step("1m"))
	b.Annotation(dashboard.NewAnnotationQueryBuilder().
		Name("Replica restarted").
		Datasource(datasource()).
		Enable(true).
		IconColor("orange").
		Expr(fmt.Sprintf("max by (job, node_id) (resets(%s{%s}[$__rate_interval])) > 0", targets.LanectlSent, selector)).
		TitleFormat("{{node_id}} restarted").
		TextFormat("{{node_id}}'s dispatcher counters started again from zero: the replica restarted").
		TagKeys("node_id").
		Step("1m"))
}

// scrapeTargetsUp is the stat panel of how many of the selected jobs'
// targets Prometheus scraped on its last attempt, out of all of them.
func scrapeTargetsUp(description string) *stat.PanelBuilder {
	return stat.NewPanelBuilder().
		Title("Scrape targets up").
		Description(description).
		Datasource(datasource()).
		WithTarget(instant("A", `sum by (job) (up{job=~"$job"})`, "up {{job}}")).
		WithTarget(instant("B", `count by (job) (up{job=~"$job"})`, "targets {{job}}")).
		Unit(units.NoUnit).
		Decimals(0).
		ColorMode(common.BigValueColorModeNone).
		GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName).
		Orientation(common.VizOrientationHorizontal).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})).
		Span(24).Height(4)
}
