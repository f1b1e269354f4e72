package gates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lanectl/lanectl/query"
)

// Querier answers one instant PromQL query. Both query.Prometheus and
// query.Embedded satisfy it.
type Querier interface {
	Query(ctx context.Context, expr string, at time.Time) (query.Vector, query.Warnings, error)
}

// Target is one replica in a soak. Selector is PromQL label matchers
// without braces, e.g. node_id="n2".
type Target struct {
	Name     string
	Selector string
}

// Window is a soak window. In a Result, End is where evaluation stopped.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Duration is End - Start.
func (w Window) Duration() time.Duration { return w.End.Sub(w.Start) }

// DefaultStep is the coverage gate's resolution when Request.Step is zero.
// It must be at least the scrape interval.
const DefaultStep = time.Minute

// Request is one evaluation.
type Request struct {
	// Canaries run with the flag: usually one, several when a stage enables
	// max_parallel > 1 replicas at once.
	Canaries []Target
	// Baselines run without it; relative gates compare against the worst.
	Baselines []Target
	// Window is evaluated up to min(Window.End, Now).
	Window Window
	// ExpectSyncMode is "sync" or "nosync"; empty means "sync", the
	// store's default.
	ExpectSyncMode string
	// PresenceMetric is a series every replica exports at every scrape,
	// named by the target the gate set belongs to. A replica with a sample
	// of it in the window reported, so {{increase}} reads a counter it
	// never created as zero rather than as missing.
	PresenceMetric string
	// External holds, by gate name, the values of the gates the set
	// decides outside PromQL (Spec.External). A gate without an entry is
	// inconclusive, saying what was missing.
	External map[string][]ExternalValue
	// Step is the coverage resolution; zero means DefaultStep.
	Step time.Duration
	// Now is the evaluation clock; zero means time.Now().
	Now time.Time
}

// Result is the verdict of a soak with everything needed to explain it.
type Result struct {
	Verdict Verdict `json:"verdict"`
	// Window is the evaluated window: End is min(requested end, now).
	Window Window `json:"window"`
	// Complete is false while the requested window is not over.
	Complete bool `json:"complete"`
	// Reason explains the overall verdict in one line.
	Reason string       `json:"reason"`
	Gates  []GateResult `json:"gates"`
}

// GateResult is one gate's verdict and its evidence.
type GateResult struct {
	Name      string         `json:"name"`
	Verdict   Verdict        `json:"verdict"`
	Reason    string         `json:"reason"`
	Query     string         `json:"query"`
	Threshold string         `json:"threshold"`
	Values    []ReplicaValue `json:"values"`
	Warnings  []string       `json:"warnings,omitempty"`
	// DecidedFrom is Spec.External: what decided a gate that has no query.
	DecidedFrom string `json:"decided_from,omitempty"`
}

// ReplicaValue is one replica's value under a gate. Missing is true when
// the gate's answer had no sample for the replica; Value is then NaN.
type ReplicaValue struct {
	Replica string
	Role    string
	Value   float64
	Missing bool
	Verdict Verdict
	Reason  string
}

// MarshalJSON writes a missing or NaN value as null and an infinite one as
// the strings "+Inf"/"-Inf", which JSON numbers cannot hold.
func (v ReplicaValue) MarshalJSON() ([]byte, error) {
	var val any = v.Value
	switch {
	case v.Missing || math.IsNaN(v.Value):
		val = nil
	case math.IsInf(v.Value, 1):
		val = "+Inf"
	case math.IsInf(v.Value, -1):
		val = "-Inf"
	}
	return json.Marshal(struct {
		Replica string  `json:"replica"`
		Role    string  `json:"role"`
		Value   any     `json:"value"`
		Verdict Verdict `json:"verdict,omitempty"`
		Reason  string  `json:"reason,omitempty"`
	}{v.Replica, v.Role, val, v.Verdict, v.Reason})
}

// ErrBadRequest is returned when a Request cannot be evaluated: no canary,
// a replica named twice, a selector that does not parse, a window that
// starts in the future or ends before it starts.
var ErrBadRequest = errors.New("bad soak request")

// Evaluate runs every enabled gate of set once for all replicas of req and
// judges the answers. An error means no verdict could be formed (backend
// unreachable, bad request, a gate answer that does not name its
// replicas); a verdict that is merely unfavourable is not an error.
func Evaluate(ctx context.Context, q Querier, set Set, req Request) (Result, error) {
	return evaluate(ctx, q, set, req, layoutGrouped)
}

func evaluate(ctx context.Context, q Querier, set Set, req Request, l layout) (Result, error) {
	rs, err := resolveReplicas(req)
	if err != nil {
		return Result{}, err
	}
	if !metricName.MatchString(req.PresenceMetric) {
		return Result{}, fmt.Errorf("%w: presence metric %q is not a metric name (the target names it)", ErrBadRequest, req.PresenceMetric)
	}
	if err := checkExternal(set, rs, req.External); err != nil {
		return Result{}, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	w := req.Window
	switch {
	case w.Start.IsZero():
		return Result{}, fmt.Errorf("%w: window has no start", ErrBadRequest)
	case !w.End.After(w.Start):
		return Result{}, fmt.Errorf("%w: window end %s is not after its start %s", ErrBadRequest, w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339))
	case w.Start.After(now):
		return Result{}, fmt.Errorf("%w: window starts at %s, which is in the future (now %s)", ErrBadRequest, w.Start.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	end := w.End
	complete := true
	if now.Before(end) {
		end, complete = now, false
	}
	// Millisecond precision is all PromQL durations carry.
	end = end.Truncate(time.Millisecond)
	eval := Window{Start: w.Start, End: end}
	res := Result{Window: eval, Complete: complete}
	span := eval.Duration().Truncate(time.Millisecond)
	if span < time.Second {
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("window has only just started (%s of %s elapsed)", humanDuration(span), humanDuration(w.Duration()))
		return res, nil
	}
	step := req.Step
	if step <= 0 {
		step = DefaultStep
	}
	mode := req.ExpectSyncMode
	if mode == "" {
		mode = "sync"
	}
	if mode != "sync" && mode != "nosync" {
		return Result{}, fmt.Errorf("%w: expected sync mode %q: want sync or nosync", ErrBadRequest, mode)
	}
	data := newTemplateData(span, step, mode, req.PresenceMetric)

	eff := l
	if l == layoutGrouped {
		eff = rs.layout
	}
	for _, g := range set {
		if g.Disabled {
			continue
		}
		var gr GateResult
		if g.External != "" {
			gr = evalExternal(g, rs, req.External[g.Name], eval)
		} else if gr, err = evalGate(ctx, q, g, rs, data, eval, l, eff); err != nil {
			return Result{}, err
		}
		res.Gates = append(res.Gates, gr)
	}
	res.conclude(w.Duration())
	return res, nil
}

// conclude sets the soak's verdict and reason from its gates: the worst
// gate's, and at best inconclusive while the window (of length want) is
// not over.
func (res *Result) conclude(want time.Duration) {
	res.Verdict = Pass
	worstReason := ""
	for _, gr := range res.Gates {
		if gr.Verdict.rank() > res.Verdict.rank() {
			worstReason = gr.Name + ": " + gr.Reason
		}
		res.Verdict = Worst(res.Verdict, gr.Verdict)
	}
	span := res.Window.Duration()
	switch {
	case len(res.Gates) == 0:
		res.Verdict = Inconclusive
		res.Reason = "every gate is disabled"
	case res.Verdict != Pass:
		res.Reason = worstReason
	case !res.Complete:
		res.Verdict = Inconclusive
		res.Reason = fmt.Sprintf("all gates pass so far, but the window is not over: %s of %s elapsed", humanDuration(span), humanDuration(want))
	default:
		res.Reason = fmt.Sprintf("all %d gates pass over %s", len(res.Gates), humanDuration(span))
	}
}

func resolveReplicas(req Request) (replicaSet, error) {
	if len(req.Canaries) == 0 {
		return replicaSet{}, fmt.Errorf("%w: no canary replica", ErrBadRequest)
	}
	seen := map[string]bool{}
	var rs []replica
	add := func(t Target, r role) error {
		if t.Name == "" {
			return fmt.Errorf("%w: a %s replica has no name", ErrBadRequest, r)
		}
		if seen[t.Name] {
			return fmt.Errorf("%w: replica %q is listed twice", ErrBadRequest, t.Name)
		}
		seen[t.Name] = true
		ms, err := query.ParseMatchers(t.Selector)
		if err != nil {
			return fmt.Errorf("%w: replica %q: %w", ErrBadRequest, t.Name, err)
		}
		rs = append(rs, replica{name: t.Name, role: r, matchers: ms})
		return nil
	}
	for _, t := range req.Canaries {
		if err := add(t, roleCanary); err != nil {
			return replicaSet{}, err
		}
	}
	for _, t := range req.Baselines {
		if err := add(t, roleBaseline); err != nil {
			return replicaSet{}, err
		}
	}
	return newReplicaSet(rs), nil
}

func evalGate(ctx context.Context, q Querier, g Spec, rs replicaSet, data templateData, w Window, l, eff layout) (GateResult, error) {
	qs, err := rs.queries(g, data, l)
	if err != nil {
		return GateResult{}, fmt.Errorf("gate %q: %w", g.Name, err)
	}
	gr := GateResult{Name: g.Name, Query: strings.Join(qs, "\n"), Threshold: g.Threshold()}
	values, warns, err := gateValues(ctx, q, g, rs, qs, w.End, eff)
	gr.Warnings = warns
	if err != nil {
		return GateResult{}, err
	}
	judge(&gr, g, rs.replicas, values, w.Duration())
	if g.Events {
		if err := timeEvents(ctx, q, &gr, g, rs, data, w, l, eff); err != nil {
			return GateResult{}, err
		}
	}
	demoteOnWarnings(&gr)
	return gr, nil
}

// gateValues sends a gate's rendered queries, evaluated at at, and reads
// each replica's value from the answers.
func gateValues(ctx context.Context, q Querier, g Spec, rs replicaSet, qs []string, at time.Time, eff layout) (map[string]float64, []string, error) {
	label, byValue := rs.label, rs.byValue
	if eff != layoutGrouped {
		label = joinedReplicaLabel
		byValue = map[string]string{}
		for _, r := range rs.replicas {
			byValue[r.name] = r.name
		}
	}
	values := map[string]float64{}
	var warnings []string
	for _, expr := range qs {
		vec, warns, err := q.Query(ctx, expr, at)
		warnings = append(warnings, warns...)
		if err != nil {
			return nil, warnings, fmt.Errorf("gate %q: %w", g.Name, err)
		}
		for _, s := range vec {
			name, ok := byValue[s.Labels[label]]
			if !ok {
				continue
			}
			if _, dup := values[name]; dup {
				return nil, warnings, fmt.Errorf("gate %q: %w: answer has more than one series for replica %q (%s); aggregate by (%s)", g.Name, ErrBadSpec, name, s, query.LabelName(label))
			}
			values[name] = s.Value
		}
	}
	return values, warnings, nil
}

// demoteOnWarnings makes a passing gate inconclusive when its answer came
// with warnings: Prometheus warns when the answer may be partial (a remote
// read or a federated store that did not answer), and a pass on partial
// data is not a pass. A worse verdict stays as it is; the warnings are
// added to the reason either way.
func demoteOnWarnings(gr *GateResult) {
	gr.Warnings = slices.Compact(slices.Sorted(slices.Values(gr.Warnings)))
	if len(gr.Warnings) == 0 {
		return
	}
	warned := "the answer came with warnings (" + strings.Join(gr.Warnings, "; ") + ")"
	if gr.Verdict == Pass {
		gr.Verdict = Inconclusive
		gr.Reason = warned + ", so a pass cannot be trusted: " + gr.Reason
		return
	}
	gr.Reason += "; " + warned
}
