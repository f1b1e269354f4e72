package gates

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/lanectl/lanectl/query"
)

// DefaultReplicaLabel is the label that names a replica in every series it
// exports (the README's "Metric names"), and the one preferred for grouping.
const DefaultReplicaLabel = "node_id"

// joinedReplicaLabel is added by label_replace when replica selectors have
// no common label to group by, so answers still name their replica.
const joinedReplicaLabel = "lanectl_replica"

// checkPresenceMetric stands in for a target's presence metric when a
// template is checked without a request.
const checkPresenceMetric = "lanectl_presence_check"

// templateData is what gate templates see.
type templateData struct {
	Window         string
	Step           string
	Lookback       string
	Steps          int64
	PresenceWindow string
	PresenceSteps  int64
	By             string
	Selector       string
	ExpectSyncMode string
	PresenceMetric string
	window         time.Duration
	step           time.Duration
}

func (d templateData) funcs() template.FuncMap {
	return template.FuncMap{
		"sel": d.sel,
		"increase": func(metric string, extra ...string) (string, error) {
			if !metricName.MatchString(metric) {
				return "", fmt.Errorf("increase: %q is not a metric name", metric)
			}
			s := d.sel(extra...)
			w := d.Window
			// A series absent in the previous window of a replica that was
			// reporting then was created inside this window (after a
			// restart, or on its first event); increase() would miss the
			// value it was created with, so that first value is added.
			return fmt.Sprintf(
				`(sum by (%[1]s) (increase(%[2]s%[3]s[%[4]s]) or label_replace((min_over_time(%[2]s%[3]s[%[4]s]) unless max_over_time(%[2]s%[3]s[%[4]s] offset %[4]s)) and on (%[1]s) group by (%[1]s) (last_over_time(%[5]s%[6]s[%[4]s] offset %[4]s)), "lanectl_born", "1", "", "")) or 0 * group by (%[1]s) (last_over_time(%[5]s%[6]s[%[4]s])))`,
				d.By, metric, s, w, d.PresenceMetric, d.sel()), nil
		},
	}
}

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// sel builds a braced selector from extra matchers and the replicas'.
func (d templateData) sel(extra ...string) string { return query.Selector(d.Selector, extra...) }

func render(name, tmpl string, d templateData) (string, error) {
	t, err := template.New(name).Funcs(d.funcs()).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("%w: template: %w", ErrBadSpec, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("%w: template: %w", ErrBadSpec, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// checkTemplate renders tmpl for two sample replicas and parses the result.
func checkTemplate(tmpl string) error {
	if strings.TrimSpace(tmpl) == "" {
		return fmt.Errorf("%w: empty query", ErrBadSpec)
	}
	d := newTemplateData(time.Hour, time.Minute, "sync", checkPresenceMetric)
	d.By = DefaultReplicaLabel
	d.Selector = `node_id=~"n1|n2"`
	q, err := render("check", tmpl, d)
	if err != nil {
		return err
	}
	if err := query.CheckExpr(q); err != nil {
		return fmt.Errorf("%w: query does not parse: %w", ErrBadSpec, err)
	}
	return nil
}

func newTemplateData(window, step time.Duration, syncMode, presenceMetric string) templateData {
	steps := int64(window / step)
	if steps < 1 {
		steps = 1
	}
	// Presence is tested at every Step of the window but its first: the
	// lookback of the first test still reaches the window's start, and a
	// replica whose first sample landed a moment after the start (a scraper
	// started with the window) is not short one Step of coverage.
	presence := max(window-step, step)
	return templateData{
		Window:         promDuration(window),
		Step:           promDuration(step),
		Lookback:       promDuration(2 * step),
		Steps:          steps,
		PresenceWindow: promDuration(presence),
		PresenceSteps:  max(int64(presence/step), 1),
		ExpectSyncMode: syncMode,
		PresenceMetric: presenceMetric,
		window:         window,
		step:           step,
	}
}

// promDuration writes d (to the millisecond) as a PromQL duration.
func promDuration(d time.Duration) string {
	ms := d.Milliseconds()
	if ms <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		unit string
		ms   int64
	}{{"d", 86_400_000}, {"h", 3_600_000}, {"m", 60_000}, {"s", 1000}, {"ms", 1}} {
		if n := ms / u.ms; n > 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteString(u.unit)
			ms -= n * u.ms
		}
	}
	return b.String()
}

// humanDuration is promDuration in hours rather than days, for reasons.
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	h := int64(d / time.Hour)
	m := int64(d%time.Hour) / int64(time.Minute)
	s := int64(d%time.Minute) / int64(time.Second)
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}

// role of a replica in a soak.
type role string

const (
	roleCanary   role = "canary"
	roleBaseline role = "baseline"
)

type replica struct {
	name     string
	role     role
	matchers []query.Matcher
}

// layout says how one gate becomes queries for a set of replicas.
type layout int

const (
	// layoutGrouped: one query whose selector matches every replica, grouped
	// by the label whose value tells replicas apart.
	layoutGrouped layout = iota
	// layoutJoined: replicas share no such label, so the gate is rendered
	// per replica, tagged with label_replace and joined with "or" — still
	// one query.
	layoutJoined
	// layoutPerReplica: one query per replica. Only the benchmark uses it,
	// as the strategy the grouped layout is measured against.
	layoutPerReplica
)

// replicaSet resolves how a set of replicas is selected and named.
type replicaSet struct {
	replicas []replica
	layout   layout
	// label in answers that names the replica, and value -> replica name.
	label   string
	byValue map[string]string
	// selector matching all replicas, in layoutGrouped.
	selector string
}

func newReplicaSet(rs []replica) replicaSet {
	set := replicaSet{replicas: rs}
	if l, rest, vals, ok := commonLabel(rs); ok {
		set.layout = layoutGrouped
		set.label = l
		set.byValue = map[string]string{}
		alts := make([]string, len(rs))
		for i, r := range rs {
			set.byValue[vals[i]] = r.name
			alts[i] = regexp.QuoteMeta(vals[i])
		}
		ms := make([]string, 0, len(rest)+1)
		for _, m := range rest {
			ms = append(ms, m.String())
		}
		if len(rs) == 1 {
			ms = append(ms, query.Matcher{Name: l, Op: "=", Value: vals[0]}.String())
		} else {
			ms = append(ms, query.Matcher{Name: l, Op: "=~", Value: strings.Join(alts, "|")}.String())
		}
		set.selector = strings.Join(ms, ", ")
		return set
	}
	set.layout = layoutJoined
	set.label = joinedReplicaLabel
	set.byValue = map[string]string{}
	for _, r := range rs {
		set.byValue[r.name] = r.name
	}
	return set
}

// commonLabel finds a label L such that every replica's selector is the
// same except for one equality matcher on L with a value of its own. It
// prefers node_id.
func commonLabel(rs []replica) (label string, rest []query.Matcher, values []string, ok bool) {
	var candidates []string
	for _, m := range rs[0].matchers {
		if m.Op == "=" && m.Value != "" {
			candidates = append(candidates, m.Name)
		}
	}
	if i := slices.Index(candidates, DefaultReplicaLabel); i > 0 {
		candidates[0], candidates[i] = candidates[i], candidates[0]
	}
next:
	for _, l := range candidates {
		values = values[:0]
		var restKey string
		seen := map[string]bool{}
		for i, r := range rs {
			var v string
			found := false
			var others []query.Matcher
			for _, m := range r.matchers {
				if m.Name == l && m.Op == "=" && !found {
					v, found = m.Value, true
					continue
				}
				others = append(others, m)
			}
			if !found || v == "" || seen[v] {
				continue next
			}
			seen[v] = true
			slices.SortFunc(others, func(a, b query.Matcher) int { return strings.Compare(a.String(), b.String()) })
			key := fmt.Sprint(others)
			if i == 0 {
				restKey, rest = key, others
			} else if key != restKey {
				continue next
			}
			values = append(values, v)
		}
		return l, rest, values, true
	}
	return "", nil, nil, false
}

// queries renders gate g for the replica set: one query, except in
// layoutPerReplica.
func (s replicaSet) queries(g Spec, d templateData, l layout) ([]string, error) {
	if l == layoutGrouped && s.layout == layoutGrouped {
		d.By, d.Selector = query.LabelName(s.label), s.selector
		q, err := render(g.Name, g.Query, d)
		if err != nil {
			return nil, err
		}
		return []string{q}, nil
	}
	parts := make([]string, 0, len(s.replicas))
	for _, r := range s.replicas {
		ms := make([]string, len(r.matchers))
		for i, m := range r.matchers {
			ms[i] = m.String()
		}
		d.By, d.Selector = "", strings.Join(ms, ", ")
		q, err := render(g.Name, g.Query, d)
		if err != nil {
			return nil, err
		}
		parts = append(parts, fmt.Sprintf("label_replace(%s, %q, %q, \"\", \"\")", q, joinedReplicaLabel, r.name))
	}
	if l == layoutPerReplica {
		return parts, nil
	}
	return []string{strings.Join(parts, " or ")}, nil
}
