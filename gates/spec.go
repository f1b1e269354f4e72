package gates

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Kind says what a gate's number measures, which decides how reasons
// print it.
type Kind string

// Kinds of gate values.
const (
	// KindCount is a number of events in the window (drops, leader changes).
	KindCount Kind = "count"
	// KindRatio is a share of messages (dropped / (dropped + sent)).
	KindRatio Kind = "ratio"
	// KindSeconds is a duration in seconds.
	KindSeconds Kind = "seconds"
	// KindFraction is a share of the window's time.
	KindFraction Kind = "fraction"
)

// Scope says which replicas a gate's absolute limits apply to.
type Scope string

// Scopes.
const (
	// ScopeCanary judges only the canaries; baseline values are shown.
	ScopeCanary Scope = "canary"
	// ScopeAll judges every replica against Min/Max.
	ScopeAll Scope = "all"
)

// Spec is one gate: a PromQL template that yields one value per replica,
// and the limits that value is judged against.
//
// The template is Go text/template over these fields and functions:
//
//	{{.Window}}          the window as a PromQL duration, e.g. 1d or 1h30m
//	{{.Step}}            coverage resolution, e.g. 1m
//	{{.Lookback}}        two Steps: how far back a sample still counts as present
//	{{.Steps}}           whole Steps in the window (at least 1)
//	{{.PresenceWindow}}  the window less its first Step (at least one Step):
//	                     the range to test presence over every Step, whose
//	                     first test looks back to the window's start
//	{{.PresenceSteps}}   whole Steps in PresenceWindow (at least 1)
//	{{.By}}              the replica label to group by, e.g. node_id
//	{{.Selector}}        matchers selecting every replica, without braces
//	{{.ExpectSyncMode}}  sync or nosync
//	{{.PresenceMetric}}  the target's series every replica always exports
//	{{sel `lane="x"`}}   {lane="x", <replica matchers>}: a full selector
//	{{increase "metric" `lane="x"`}}
//	                     per-replica increase of a counter over the window,
//	                     summed over its series, counting series born in
//	                     the window from zero, and 0 for a replica that
//	                     reported but never had such a series
//
// The rendered query must return one sample per replica carrying the
// replica label (aggregate with "by ({{.By}})").
type Spec struct {
	Name string
	Help string
	// What names the value in reasons: "heartbeat-lane drops".
	What  string
	Kind  Kind
	Query string
	Scope Scope
	// Min and Max are absolute limits (inclusive) for the replicas in Scope.
	Min, Max *float64
	// BaselineMin and BaselineMax are absolute limits for baselines, for
	// gates where baselines must differ from canaries (the flag itself).
	BaselineMin, BaselineMax *float64
	// Factor, when set, judges each canary against the worst baseline:
	// canary <= max(baselines) * Factor + Slack.
	Factor *float64
	Slack  float64
	// Violation is the verdict when a limit is broken: Fail, or
	// Inconclusive for gates that measure whether there is enough data.
	Violation Verdict
	Disabled  bool
	// External, when set, says what decides the gate outside PromQL ("the
	// journal and commands.read"): Query is empty, and Evaluate takes each
	// replica's value from Request.External[Name] and judges it against
	// the limits like any other value. A replica without one is
	// inconclusive, never a pass.
	External string
	// Events marks a KindCount gate whose values count events (restarts):
	// a replica over its limit gets the time of each event in its reason,
	// found by evaluating the same query over shorter windows.
	Events bool
}

// Set is an ordered list of gates.
type Set []Spec

// Override changes one gate of a target's set, or defines a new one. It is
// the value of one key of a plan file's soak.gates block. For a gate of
// the set, unset fields keep the set's; a name the set does not have
// defines a gate, which needs at least query and kind and one limit, and
// defaults to scope canary, violation fail, and its name as help and what.
type Override struct {
	Query       *string  `yaml:"query,omitempty" json:"query,omitempty"`
	Kind        *Kind    `yaml:"kind,omitempty" json:"kind,omitempty"`
	Scope       *Scope   `yaml:"scope,omitempty" json:"scope,omitempty"`
	Min         *float64 `yaml:"min,omitempty" json:"min,omitempty"`
	Max         *float64 `yaml:"max,omitempty" json:"max,omitempty"`
	BaselineMin *float64 `yaml:"baseline_min,omitempty" json:"baseline_min,omitempty"`
	BaselineMax *float64 `yaml:"baseline_max,omitempty" json:"baseline_max,omitempty"`
	Factor      *float64 `yaml:"factor,omitempty" json:"factor,omitempty"`
	Slack       *float64 `yaml:"slack,omitempty" json:"slack,omitempty"`
	Violation   *Verdict `yaml:"violation,omitempty" json:"violation,omitempty"`
	Events      *bool    `yaml:"events,omitempty" json:"events,omitempty"`
	Help        *string  `yaml:"help,omitempty" json:"help,omitempty"`
	What        *string  `yaml:"what,omitempty" json:"what,omitempty"`
	Disabled    *bool    `yaml:"disabled,omitempty" json:"disabled,omitempty"`
}

// Overrides are keyed by gate name.
type Overrides map[string]Override

// ErrUnknownGate is returned by Set.With when an override names a gate the
// set does not have and does not define it (no query or no kind).
var ErrUnknownGate = errors.New("unknown gate")

// ErrBadSpec is returned when a gate's query does not render or parse, or
// its limits contradict each other.
var ErrBadSpec = errors.New("bad gate")

// Names lists the gates in order.
func (s Set) Names() []string {
	out := make([]string, len(s))
	for i, g := range s {
		out[i] = g.Name
	}
	return out
}

// Lookup finds a gate by name.
func (s Set) Lookup(name string) (Spec, bool) {
	for _, g := range s {
		if g.Name == name {
			return g, true
		}
	}
	return Spec{}, false
}

// With returns a copy of s with o applied and every gate checked: unknown
// gate names that define nothing, templates that do not render, PromQL
// that does not parse (with the position of the error) and contradictory
// limits are rejected. Defined gates follow the set's, by name.
func (s Set) With(o Overrides) (Set, error) {
	out := slices.Clone(s)
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		ov := o[name]
		i := slices.IndexFunc(out, func(g Spec) bool { return g.Name == name })
		if i < 0 {
			if ov.Query == nil || ov.Kind == nil {
				return nil, fmt.Errorf("gate %q: %w (known gates: %s); to define a gate, give at least query, kind and a limit", name, ErrUnknownGate, strings.Join(s.Names(), ", "))
			}
			out = append(out, Spec{Name: name, Help: name, What: name, Scope: ScopeCanary, Violation: Fail})
			i = len(out) - 1
		}
		g := out[i]
		if ov.Kind != nil {
			g.Kind = *ov.Kind
		}
		if ov.Scope != nil {
			g.Scope = *ov.Scope
		}
		if ov.BaselineMin != nil {
			g.BaselineMin = ptr(*ov.BaselineMin)
		}
		if ov.BaselineMax != nil {
			g.BaselineMax = ptr(*ov.BaselineMax)
		}
		if ov.Violation != nil {
			g.Violation = *ov.Violation
		}
		if ov.Events != nil {
			g.Events = *ov.Events
		}
		if ov.Help != nil {
			g.Help = *ov.Help
		}
		if ov.What != nil {
			g.What = *ov.What
		}
		if ov.Query != nil {
			g.Query = *ov.Query
			// A query given for a gate decided outside PromQL moves it
			// into PromQL.
			g.External = ""
		}
		if ov.Min != nil {
			g.Min = ptr(*ov.Min)
		}
		if ov.Max != nil {
			g.Max = ptr(*ov.Max)
		}
		if ov.Factor != nil {
			g.Factor = ptr(*ov.Factor)
		}
		if ov.Slack != nil {
			g.Slack = *ov.Slack
		}
		if ov.Disabled != nil {
			g.Disabled = *ov.Disabled
		}
		out[i] = g
	}
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// Validate checks every gate as With does.
func (s Set) Validate() error {
	seen := map[string]bool{}
	for _, g := range s {
		if g.Name == "" {
			return fmt.Errorf("%w: a gate has no name", ErrBadSpec)
		}
		if seen[g.Name] {
			return fmt.Errorf("gate %q: %w: defined twice", g.Name, ErrBadSpec)
		}
		seen[g.Name] = true
		if err := g.validate(); err != nil {
			return fmt.Errorf("gate %q: %w", g.Name, err)
		}
	}
	return nil
}

func (g Spec) validate() error {
	for _, f := range []struct {
		name string
		v    *float64
	}{{"min", g.Min}, {"max", g.Max}, {"baseline min", g.BaselineMin}, {"baseline max", g.BaselineMax}, {"factor", g.Factor}} {
		if f.v != nil && (math.IsNaN(*f.v) || math.IsInf(*f.v, 0)) {
			return fmt.Errorf("%w: %s must be a finite number", ErrBadSpec, f.name)
		}
	}
	if math.IsNaN(g.Slack) || math.IsInf(g.Slack, 0) || g.Slack < 0 {
		return fmt.Errorf("%w: slack %v must be a finite number >= 0", ErrBadSpec, g.Slack)
	}
	if g.Factor != nil && *g.Factor < 0 {
		return fmt.Errorf("%w: factor %v must be >= 0", ErrBadSpec, *g.Factor)
	}
	if g.Min != nil && g.Max != nil && *g.Min > *g.Max {
		return fmt.Errorf("%w: min %v is above max %v", ErrBadSpec, *g.Min, *g.Max)
	}
	if g.Min == nil && g.Max == nil && g.Factor == nil && g.BaselineMin == nil && g.BaselineMax == nil && !g.Disabled {
		return fmt.Errorf("%w: no limit (set min, max or factor)", ErrBadSpec)
	}
	switch g.Kind {
	case KindCount, KindRatio, KindSeconds, KindFraction:
	default:
		return fmt.Errorf("%w: kind %q: want count, ratio, seconds or fraction", ErrBadSpec, g.Kind)
	}
	switch g.Violation {
	case Fail, Inconclusive:
	default:
		return fmt.Errorf("%w: violation verdict %q: want fail or inconclusive", ErrBadSpec, g.Violation)
	}
	switch g.Scope {
	case ScopeCanary, ScopeAll:
	default:
		return fmt.Errorf("%w: scope %q: want canary or all", ErrBadSpec, g.Scope)
	}
	if g.Events && g.Kind != KindCount {
		return fmt.Errorf("%w: events are counted, so an events gate has kind count, not %q", ErrBadSpec, g.Kind)
	}
	if g.External != "" {
		if strings.TrimSpace(g.Query) != "" {
			return fmt.Errorf("%w: decided from %s, so it has no query", ErrBadSpec, g.External)
		}
		if g.Events {
			return fmt.Errorf("%w: decided from %s, so its events cannot be timed by a query", ErrBadSpec, g.External)
		}
		return nil
	}
	return checkTemplate(g.Query)
}

// Threshold describes the limits in one line, as tables and JSON show them.
func (g Spec) Threshold() string {
	var parts []string
	who := "canary"
	if g.Scope == ScopeAll {
		who = "all"
	}
	if g.Min != nil {
		parts = append(parts, fmt.Sprintf("%s >= %s", who, formatLimit(g.Kind, *g.Min)))
	}
	if g.Max != nil {
		parts = append(parts, fmt.Sprintf("%s <= %s", who, formatLimit(g.Kind, *g.Max)))
	}
	if g.Factor != nil {
		s := fmt.Sprintf("canary <= max(baseline) x %g", *g.Factor)
		if g.Slack != 0 {
			s += " + " + formatLimit(g.Kind, g.Slack)
		}
		parts = append(parts, s)
	}
	if g.BaselineMin != nil {
		parts = append(parts, "baseline >= "+formatLimit(g.Kind, *g.BaselineMin))
	}
	if g.BaselineMax != nil {
		parts = append(parts, "baseline <= "+formatLimit(g.Kind, *g.BaselineMax))
	}
	return strings.Join(parts, ", ")
}

func ptr(f float64) *float64 { return &f }
