package gatetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
)

// Target is what a test file's target: key stands for.
type Target struct {
	// Gates is the target's gate set, before the file's overrides.
	Gates gates.Set
	// PresenceMetric is the series every replica always exports.
	PresenceMetric string
	// ReplicaLabel names a replica: a test's replica n2 is the series
	// with <ReplicaLabel>="n2".
	ReplicaLabel string
}

// Resolver finds the target a file names ("" when it names none).
type Resolver func(name string) (Target, error)

// Result is the outcome of one test.
type Result struct {
	File string
	Test string
	Line int
	// Diffs are the expectations the evaluation did not meet, one line
	// each; none means the test passed.
	Diffs []string
	// Soak is what the gates decided.
	Soak gates.Result
}

// Passed is true when every expectation held.
func (r Result) Passed() bool { return len(r.Diffs) == 0 }

// Run runs every test of f. An error (ErrBadFile, with file:line) means a
// test could not run; tests that merely fail are Results with Diffs.
func Run(ctx context.Context, f *File, resolve Resolver) ([]Result, error) {
	target, err := resolve(f.Target)
	if err != nil {
		return nil, fmt.Errorf("%s:1: %w: target: %w", f.Path, ErrBadFile, err)
	}
	var out []Result
	for _, t := range f.Tests {
		r, err := runTest(ctx, f, t, target)
		if err != nil {
			return out, fmt.Errorf("%s:%d: %w: test %q: %w", f.Path, t.Line, ErrBadFile, t.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func runTest(ctx context.Context, f *File, t Test, target Target) (Result, error) {
	set, err := target.Gates.With(f.Gates)
	if err != nil {
		return Result{}, fmt.Errorf("file's gates: %w", err)
	}
	if set, err = set.With(t.Gates); err != nil {
		return Result{}, fmt.Errorf("gates: %w", err)
	}
	load, err := loadCommand(time.Duration(t.Interval), f.Series, t.Series)
	if err != nil {
		return Result{}, err
	}
	ll, err := promqltest.NewLazyLoader(load, promqltest.LazyLoaderOpts{EnableAtModifier: true, EnableNegativeOffset: true})
	if err != nil {
		return Result{}, fmt.Errorf("input_series: %w", err)
	}
	defer func() { _ = ll.Close() }()
	zero := time.Unix(0, 0).UTC()
	end := zero.Add(time.Duration(t.Window.End))
	now := end
	if t.Now != nil {
		now = zero.Add(time.Duration(*t.Now))
	}
	var loadErr error
	// Every sample: queries at any time see only what lies before it.
	ll.WithSamplesTill(zero.Add(100*365*24*time.Hour), func(err error) { loadErr = err })
	if loadErr != nil {
		return Result{}, fmt.Errorf("input_series: %w", loadErr)
	}
	eng := query.NewEngine(ll.Queryable(), nil)
	defer func() { _ = eng.Close() }()

	req := gates.Request{
		Window:         gates.Window{Start: zero.Add(time.Duration(t.Window.Start)), End: end},
		ExpectSyncMode: t.ExpectSyncMode,
		PresenceMetric: target.PresenceMetric,
		Step:           time.Duration(t.Step),
		Now:            now,
	}
	sel := func(name string) gates.Target {
		return gates.Target{Name: name, Selector: query.Matcher{Name: target.ReplicaLabel, Op: "=", Value: name}.String()}
	}
	for _, n := range t.Canary {
		req.Canaries = append(req.Canaries, sel(n))
	}
	for _, n := range t.Baseline {
		req.Baselines = append(req.Baselines, sel(n))
	}
	for _, g := range slices.Sorted(maps.Keys(t.External)) {
		if req.External == nil {
			req.External = map[string][]gates.ExternalValue{}
		}
		for _, r := range slices.Sorted(maps.Keys(t.External[g])) {
			req.External[g] = append(req.External[g], gates.ExternalValue{Replica: r, Value: t.External[g][r], Evidence: "given by the test"})
		}
	}
	res, err := gates.Evaluate(ctx, eng, set, req)
	if err != nil {
		return Result{}, err
	}
	r := Result{File: f.Path, Test: t.Name, Line: t.Line, Soak: res}
	r.Diffs, err = compare(t, set, res)
	return r, err
}

// loadCommand is the promqltest load command for the file's series with
// the test's added; a test's series replaces a file's with the same
// labels.
func loadCommand(interval time.Duration, shared, own []Series) (string, error) {
	p := parser.NewParser(parser.Options{})
	type entry struct {
		key string
		s   Series
	}
	var all []entry
	for _, s := range append(slices.Clone(shared), own...) {
		// Load checked every series parses.
		lbls, _, err := p.ParseSeriesDesc(s.Series + " " + s.Values)
		if err != nil {
			return "", fmt.Errorf("input series on line %d: %w", s.line, err)
		}
		key := lbls.String()
		if i := slices.IndexFunc(all, func(e entry) bool { return e.key == key }); i >= 0 {
			all[i].s = s
			continue
		}
		all = append(all, entry{key, s})
	}
	if len(all) == 0 {
		return "", errors.New("no input series")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "load %s\n", model.Duration(interval))
	for _, e := range all {
		fmt.Fprintf(&b, "  %s %s\n", e.s.Series, e.s.Values)
	}
	return b.String(), nil
}

// compare lists what res does not meet of t's expectations. Naming a gate
// or replica the soak does not have is an error: the test is wrong.
func compare(t Test, set gates.Set, res gates.Result) ([]string, error) {
	var diffs []string
	if t.Expect.Verdict != "" && res.Verdict != t.Expect.Verdict {
		diffs = append(diffs, fmt.Sprintf("soak verdict: want %s, got %s (%s)", t.Expect.Verdict, res.Verdict, res.Reason))
	}
	replicas := append(slices.Clone(t.Canary), t.Baseline...)
	for _, name := range slices.Sorted(maps.Keys(t.Expect.Gates)) {
		eg := t.Expect.Gates[name]
		spec, ok := set.Lookup(name)
		if !ok {
			return nil, fmt.Errorf("expect.gates.%s: no such gate (gates: %s)", name, strings.Join(set.Names(), ", "))
		}
		i := slices.IndexFunc(res.Gates, func(g gates.GateResult) bool { return g.Name == name })
		if i < 0 {
			if spec.Disabled {
				diffs = append(diffs, fmt.Sprintf("gate %s: want a verdict, got none: it is disabled", name))
				continue
			}
			return nil, fmt.Errorf("expect.gates.%s: the soak has no result for it", name)
		}
		g := res.Gates[i]
		if eg.Verdict != "" && g.Verdict != eg.Verdict {
			diffs = append(diffs, fmt.Sprintf("gate %s: verdict: want %s, got %s (%s)", name, eg.Verdict, g.Verdict, g.Reason))
		}
		if eg.Reason != "" && !strings.Contains(g.Reason, eg.Reason) {
			diffs = append(diffs, fmt.Sprintf("gate %s: reason: want it to contain %q, got %q", name, eg.Reason, g.Reason))
		}
		for _, rn := range slices.Sorted(maps.Keys(eg.Values)) {
			if !slices.Contains(replicas, rn) {
				return nil, fmt.Errorf("expect.gates.%s.values.%s: not a canary or baseline of the test", name, rn)
			}
			er := eg.Values[rn]
			j := slices.IndexFunc(g.Values, func(v gates.ReplicaValue) bool { return v.Replica == rn })
			rv := g.Values[j]
			at := fmt.Sprintf("gate %s, replica %s", name, rn)
			if er.Verdict != "" && rv.Verdict != er.Verdict {
				got := string(rv.Verdict)
				if got == "" {
					got = "not judged"
				}
				diffs = append(diffs, fmt.Sprintf("%s: verdict: want %s, got %s (%s)", at, er.Verdict, got, rv.Reason))
			}
			switch {
			case er.Missing && !rv.Missing:
				diffs = append(diffs, fmt.Sprintf("%s: value: want missing, got %s", at, formatFloat(rv.Value)))
			case er.Value != nil && rv.Missing:
				diffs = append(diffs, fmt.Sprintf("%s: value: want %s, got missing", at, formatFloat(*er.Value)))
			case er.Value != nil && !near(rv.Value, *er.Value):
				diffs = append(diffs, fmt.Sprintf("%s: value: want %s, got %s", at, formatFloat(*er.Value), formatFloat(rv.Value)))
			}
			if er.Reason != "" && !strings.Contains(rv.Reason, er.Reason) {
				diffs = append(diffs, fmt.Sprintf("%s: reason: want it to contain %q, got %q", at, er.Reason, rv.Reason))
			}
		}
	}
	return diffs, nil
}

// near compares within one part in a million; NaN matches only NaN.
func near(got, want float64) bool {
	if math.IsNaN(want) || math.IsNaN(got) {
		return math.IsNaN(want) && math.IsNaN(got)
	}
	if got == want {
		return true
	}
	return math.Abs(got-want) <= 1e-6*math.Max(math.Abs(want), 1e-9)
}

func formatFloat(v float64) string { return fmt.Sprintf("%g", v) }
