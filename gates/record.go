package gates

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// RecordFormat is the version of the record files NewRecord writes; Judge
// refuses any other.
const RecordFormat = 1

// Record is the evidence behind one soak verdict: the replicas and their
// roles, the window, and every gate's query and per-replica values. It is
// enough to decide the same soak again offline with other limits (Judge),
// without the metrics.
type Record struct {
	Format int `json:"lanectl_soak_record"`
	// Target names the target whose gates were evaluated.
	Target     string    `json:"target,omitempty"`
	RecordedAt time.Time `json:"recorded_at"`
	// Window is the evaluated window; Requested the soak's whole window,
	// which Window ends short of while the soak is not over (Complete).
	Window    Window         `json:"window"`
	Requested Window         `json:"requested"`
	Complete  bool           `json:"complete"`
	Canaries  []Target       `json:"canaries"`
	Baselines []Target       `json:"baselines"`
	Gates     []RecordedGate `json:"gates"`
	// Result is the verdict as it was decided when recorded.
	Result Result `json:"result"`
}

// RecordedGate is one gate's evidence.
type RecordedGate struct {
	Name string `json:"name"`
	// Template is the gate's query template; a gate whose template has
	// changed since cannot be judged from these values.
	Template string `json:"template"`
	// Query is the PromQL that was sent.
	Query    string          `json:"query"`
	Warnings []string        `json:"warnings,omitempty"`
	Values   []RecordedValue `json:"values"`
}

// RecordedValue is one replica's value under a gate. Value is written as a
// string so that NaN and infinities survive JSON.
type RecordedValue struct {
	Replica string `json:"replica"`
	Missing bool   `json:"missing,omitempty"`
	Value   string `json:"value,omitempty"`
}

// NewRecord keeps the evidence of res, the result of evaluating set for req.
func NewRecord(target string, set Set, req Request, res Result, now time.Time) Record {
	r := Record{
		Format:     RecordFormat,
		Target:     target,
		RecordedAt: now.UTC(),
		Window:     res.Window,
		Complete:   res.Complete,
		Requested:  req.Window,
		Canaries:   slices.Clone(req.Canaries),
		Baselines:  slices.Clone(req.Baselines),
		Result:     res,
	}
	for _, gr := range res.Gates {
		spec, _ := set.Lookup(gr.Name)
		rg := RecordedGate{Name: gr.Name, Template: spec.Query, Query: gr.Query, Warnings: gr.Warnings}
		for _, v := range gr.Values {
			rv := RecordedValue{Replica: v.Replica, Missing: v.Missing}
			if !v.Missing {
				rv.Value = strconv.FormatFloat(v.Value, 'g', -1, 64)
			}
			rg.Values = append(rg.Values, rv)
		}
		r.Gates = append(r.Gates, rg)
	}
	return r
}

// ErrBadRecord is returned by ReadRecord and Judge for a record that is not
// one, is of another format version, or contradicts itself.
var ErrBadRecord = errors.New("bad soak record")

// ReadRecord decodes a record, strictly.
func ReadRecord(data []byte) (Record, error) {
	var probe struct {
		Format *int `json:"lanectl_soak_record"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Record{}, fmt.Errorf("%w: not JSON: %w", ErrBadRecord, err)
	}
	switch {
	case probe.Format == nil:
		return Record{}, fmt.Errorf("%w: no lanectl_soak_record key: not a file written by 'lanectl soak --record'", ErrBadRecord)
	case *probe.Format != RecordFormat:
		return Record{}, fmt.Errorf("%w: format %d, this lanectl reads format %d", ErrBadRecord, *probe.Format, RecordFormat)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if err := r.check(); err != nil {
		return Record{}, err
	}
	return r, nil
}

func (r Record) check() error {
	if r.Window.Start.IsZero() || !r.Window.End.After(r.Window.Start) {
		return fmt.Errorf("%w: window %s .. %s is empty", ErrBadRecord, r.Window.Start.Format(time.RFC3339), r.Window.End.Format(time.RFC3339))
	}
	if len(r.Canaries) == 0 {
		return fmt.Errorf("%w: no canary replica", ErrBadRecord)
	}
	roles := map[string]bool{}
	for _, t := range slices.Concat(r.Canaries, r.Baselines) {
		if t.Name == "" || roles[t.Name] {
			return fmt.Errorf("%w: replica %q is unnamed or listed twice", ErrBadRecord, t.Name)
		}
		roles[t.Name] = true
	}
	for _, g := range r.Gates {
		for _, v := range g.Values {
			if !roles[v.Replica] {
				return fmt.Errorf("%w: gate %s has a value for %q, which is neither a canary nor a baseline", ErrBadRecord, g.Name, v.Replica)
			}
			if !v.Missing {
				if _, err := strconv.ParseFloat(v.Value, 64); err != nil {
					return fmt.Errorf("%w: gate %s replica %s: value %q is not a number", ErrBadRecord, g.Name, v.Replica, v.Value)
				}
			}
		}
	}
	return nil
}

// Judge decides the recorded soak again with set: every gate whose query
// template is the one recorded is judged from the recorded values with
// set's limits. A gate that is new, or whose query changed, cannot be
// decided without the metrics and is inconclusive, never a pass.
func (r Record) Judge(set Set) (Result, error) {
	if err := r.check(); err != nil {
		return Result{}, err
	}
	var rs []replica
	for _, t := range r.Canaries {
		rs = append(rs, replica{name: t.Name, role: roleCanary})
	}
	for _, t := range r.Baselines {
		rs = append(rs, replica{name: t.Name, role: roleBaseline})
	}
	res := Result{Window: r.Window, Complete: r.Complete}
	for _, g := range set {
		if g.Disabled {
			continue
		}
		i := slices.IndexFunc(r.Gates, func(rg RecordedGate) bool { return rg.Name == g.Name })
		if i < 0 || r.Gates[i].Template != g.Query {
			why := "the gate is not in the recording"
			if i >= 0 {
				why = "its query changed since the recording"
			}
			res.Gates = append(res.Gates, GateResult{
				Name: g.Name, Verdict: Inconclusive, Threshold: g.Threshold(),
				Reason: why + ": it needs the metrics (run the soak again)",
			})
			continue
		}
		rg := r.Gates[i]
		values := map[string]float64{}
		for _, v := range rg.Values {
			if !v.Missing {
				f, _ := strconv.ParseFloat(v.Value, 64)
				values[v.Replica] = f
			}
		}
		gr := GateResult{Name: g.Name, Query: rg.Query, Threshold: g.Threshold(), Warnings: rg.Warnings}
		judge(&gr, g, rs, values, r.Window.Duration())
		demoteOnWarnings(&gr)
		res.Gates = append(res.Gates, gr)
	}
	res.conclude(r.Requested.Duration())
	return res, nil
}

// Change is one gate whose verdict differs between two results.
type Change struct {
	Gate   string  `json:"gate"`
	Before Verdict `json:"before"`
	After  Verdict `json:"after"`
	// Reason is the gate's reason in the new result.
	Reason string `json:"reason"`
}

// Changes lists the gates of after whose verdict is not the one in before
// (a gate absent from before counts as absent, "").
func Changes(before, after Result) []Change {
	was := map[string]Verdict{}
	for _, g := range before.Gates {
		was[g.Name] = g.Verdict
	}
	var out []Change
	for _, g := range after.Gates {
		if was[g.Name] != g.Verdict {
			out = append(out, Change{Gate: g.Name, Before: was[g.Name], After: g.Verdict, Reason: g.Reason})
		}
		delete(was, g.Name)
	}
	for _, g := range before.Gates {
		if v, dropped := was[g.Name]; dropped {
			out = append(out, Change{Gate: g.Name, Before: v, After: "", Reason: "not judged now (disabled or not in the gate set)"})
		}
	}
	return out
}
