package rollout

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

// DefaultSoakExpectSyncMode is the sync mode a soak without a plan expects.
const DefaultSoakExpectSyncMode = "sync"

// SoakQuestion is what a soak is asked: who the canaries are and over
// which window, by 'lanectl soak' (flags, any of them left zero) or by
// advance (the batch it enabled last).
type SoakQuestion struct {
	Canaries []string
	// Baselines empty means every replica without the flag: from the
	// journal with a plan, from the flag gauge of the target without.
	Baselines []string
	// Window zero means the plan's, else DefaultSoakWindow.
	Window time.Duration
	// Start zero means when the journal has the flag verified on the last
	// of the canaries, else now.
	Start time.Time
	// Interval zero means the plan's soak.interval, else
	// DefaultSoakInterval.
	Interval time.Duration
	// ExpectSyncMode "" means the plan's, else sync.
	ExpectSyncMode string
}

// Soak is a decided soak request: the one place that turns a question
// into the gate set and request every caller evaluates.
type Soak struct {
	Set     gates.Set
	Request gates.Request
	// Interval is how often a live soak looks again; Request.Step too.
	Interval time.Duration
	// NoBaseline is true when no replica is left without the flag: only
	// the gates' absolute limits can be judged, and the set keeps only
	// those.
	NoBaseline bool
	// StartFrom says where the window's start came from.
	StartFrom string
}

// DecideSoak decides the soak q asks about for a plan and its journal. It does
// no I/O.
func (p *Plan) DecideSoak(st *State, q SoakQuestion, now time.Time) (*Soak, error) {
	if p.Target.Gates == nil {
		return nil, fmt.Errorf("soak: %w: %s", ErrNoGates, p.Target.Name)
	}
	set, err := p.GateSet()
	if err != nil {
		return nil, err
	}
	s := &Soak{Set: set, Interval: cmp(q.Interval, p.Soak.Interval)}
	req := &s.Request
	req.PresenceMetric = p.Target.PresenceMetric
	req.ExpectSyncMode = q.ExpectSyncMode
	if req.ExpectSyncMode == "" {
		req.ExpectSyncMode = p.ExpectSyncMode
	}
	for _, n := range q.Canaries {
		r, ok := p.Replica(n)
		if !ok {
			return nil, fmt.Errorf("canary %q is not a replica of plan %s (replicas: %s): %w", n, p.Path, strings.Join(names(p.Order()), ", "), ErrUnknownReplica)
		}
		req.Canaries = append(req.Canaries, gates.Target{Name: r.Name, Selector: r.Selector})
	}
	for _, n := range q.Baselines {
		r, ok := p.Replica(n)
		if !ok {
			return nil, fmt.Errorf("baseline %q is not a replica of plan %s (replicas: %s): %w", n, p.Path, strings.Join(names(p.Order()), ", "), ErrUnknownReplica)
		}
		req.Baselines = append(req.Baselines, gates.Target{Name: r.Name, Selector: r.Selector})
	}
	if len(q.Baselines) == 0 {
		for _, r := range p.Order() {
			if _, on := st.EnabledAt(r.Name); !on && !slices.Contains(q.Canaries, r.Name) {
				req.Baselines = append(req.Baselines, gates.Target{Name: r.Name, Selector: r.Selector})
			}
		}
	}
	start, from := q.Start, "--start"
	if start.IsZero() {
		// Several canaries enabled together: the window starts when the
		// last of them got the flag.
		for _, c := range q.Canaries {
			if at, on := st.EnabledAt(c); on && at.After(start) {
				start, from = at, "rollout state "+p.StatePath
			}
		}
	}
	if err := s.window(start, from, cmp(q.Window, p.Soak.Window), now); err != nil {
		return nil, err
	}
	s.baselineRule()
	return s, nil
}

// SoakWithoutPlan decides a soak of replicas named by the target's
// replica label, asked at asked (a window without a start starts then) and
// looked up in q at now. Replicas that never reported in the window are
// refused as typos, and with no baselines named, every replica the
// target's flag gauge shows off throughout the window is one; a target
// without such a gauge needs them named.
func SoakWithoutPlan(ctx context.Context, t targets.Target, q gates.Querier, source string, sq SoakQuestion, asked, now time.Time) (*Soak, error) {
	if t.Gates == nil {
		return nil, fmt.Errorf("soak: %w: %s", ErrNoGates, t.Name)
	}
	s := &Soak{Set: t.Gates(), Interval: cmp(sq.Interval, DefaultSoakInterval)}
	req := &s.Request
	req.PresenceMetric = t.PresenceMetric
	req.ExpectSyncMode = sq.ExpectSyncMode
	if req.ExpectSyncMode == "" {
		req.ExpectSyncMode = DefaultSoakExpectSyncMode
	}
	named := func(n string) gates.Target {
		return gates.Target{Name: n, Selector: query.Matcher{Name: t.ReplicaLabel, Op: "=", Value: n}.String()}
	}
	for _, n := range sq.Canaries {
		req.Canaries = append(req.Canaries, named(n))
	}
	for _, n := range sq.Baselines {
		req.Baselines = append(req.Baselines, named(n))
	}
	start, from := sq.Start, "--start"
	if start.IsZero() {
		start, from = asked, "now"
	}
	if err := s.window(start, from, cmp(sq.Window, DefaultSoakWindow), now); err != nil {
		return nil, err
	}
	if err := s.discover(ctx, t, q, source, len(sq.Baselines) == 0, now, named); err != nil {
		return nil, err
	}
	s.baselineRule()
	return s, nil
}

func cmp(v, def time.Duration) time.Duration {
	if v != 0 {
		return v
	}
	return def
}

func (s *Soak) window(start time.Time, from string, length time.Duration, now time.Time) error {
	if start.IsZero() {
		start, from = now, "now"
	}
	if start.After(now) {
		return fmt.Errorf("window starts at %s (%s), which is in the future (now %s)", start.UTC().Format(time.RFC3339), from, now.UTC().Format(time.RFC3339))
	}
	s.Request.Window = gates.Window{Start: start, End: start.Add(length)}
	s.Request.Step = s.Interval
	s.StartFrom = from
	return nil
}

// baselineRule keeps only the absolute limits when no baseline is left to
// compare with, so a last batch is judged on what can be judged rather
// than found inconclusive.
func (s *Soak) baselineRule() {
	s.NoBaseline = len(s.Request.Baselines) == 0
	if s.NoBaseline {
		s.Set = absoluteOnly(s.Set)
	}
}

func absoluteOnly(set gates.Set) gates.Set {
	out := slices.Clone(set)
	for i := range out {
		if out[i].Factor == nil {
			continue
		}
		out[i].Factor = nil
		if out[i].Min == nil && out[i].Max == nil && out[i].BaselineMin == nil && out[i].BaselineMax == nil {
			out[i].Disabled = true
		}
	}
	return out
}

// ErrNoGates is returned when a soak is asked of a target that has no
// gate set.
var ErrNoGates = errors.New("the target has no gate set")

// ErrNoFlagGauge is returned by SoakWithoutPlan when baselines must be
// found but the target's metrics cannot show the flag.
var ErrNoFlagGauge = errors.New("the target's metrics cannot show which replicas have the flag")

// discover asks which replicas reported in the window.
func (s *Soak) discover(ctx context.Context, t targets.Target, q gates.Querier, source string, findBaselines bool, now time.Time, named func(string) gates.Target) error {
	req := &s.Request
	end := req.Window.End
	if now.Before(end) {
		end = now
	}
	span := max(end.Sub(req.Window.Start), query.DefaultLookback)
	proof, _ := t.FlagProof(lanes.FlagEnv)
	metric, flagShown := t.PresenceMetric, proof.Gauge != ""
	if flagShown {
		metric = proof.Gauge
	}
	expr := fmt.Sprintf(`max by (%s) (max_over_time(%s[%ds]))`, t.ReplicaLabel, metric, int64(math.Ceil(span.Seconds())))
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	vec, _, err := q.Query(qctx, expr, end)
	if err != nil {
		return fmt.Errorf("find replicas: %w", err)
	}
	flagOn := map[string]bool{}
	for _, smp := range vec {
		if id := smp.Labels[t.ReplicaLabel]; id != "" {
			flagOn[id] = smp.Value != 0
		}
	}
	if len(flagOn) == 0 {
		// Nothing reported at all: the gates will say there is no data.
		return nil
	}
	var known []string
	for k := range flagOn {
		known = append(known, k)
	}
	slices.Sort(known)
	for _, c := range append(slices.Clone(req.Canaries), req.Baselines...) {
		if _, ok := flagOn[c.Name]; !ok {
			return fmt.Errorf("%w %q: no series with %s=%q in %s between %s and %s (replicas seen: %s)",
				ErrUnknownReplica, c.Name, t.ReplicaLabel, c.Name, source, end.Add(-span).UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), strings.Join(known, ", "))
		}
	}
	if !findBaselines {
		return nil
	}
	if !flagShown {
		return fmt.Errorf("%w (target %s): name the baselines with --baseline, or give --config", ErrNoFlagGauge, t.Name)
	}
	for _, id := range known {
		if !flagOn[id] && !slices.ContainsFunc(req.Canaries, func(c gates.Target) bool { return c.Name == id }) {
			req.Baselines = append(req.Baselines, named(id))
		}
	}
	return nil
}
