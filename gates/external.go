package gates

import (
	"fmt"
	"slices"
)

// ExternalValue is one replica's value for a gate decided outside PromQL
// (Spec.External), found by the caller: the rollout decides the flag gate
// of a target whose metrics cannot show the flag from its journal and the
// plan's read command.
type ExternalValue struct {
	Replica string
	// Value is judged against the gate's limits; NaN is inconclusive.
	Value float64
	// Evidence says in a few words how Value was found; reasons quote it.
	Evidence string
}

// checkExternal rejects values for gates the set does not decide outside
// PromQL, and values naming a replica twice or one not in the soak.
func checkExternal(set Set, rs replicaSet, ext map[string][]ExternalValue) error {
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range ext {
			if !yield(k) {
				return
			}
		}
	}) {
		g, ok := set.Lookup(name)
		switch {
		case !ok:
			return fmt.Errorf("%w: external values for gate %q, which the set does not have", ErrBadRequest, name)
		case g.External == "":
			return fmt.Errorf("%w: external values for gate %q, which is decided by its query", ErrBadRequest, name)
		}
		seen := map[string]bool{}
		for _, v := range ext[name] {
			if !slices.ContainsFunc(rs.replicas, func(r replica) bool { return r.name == v.Replica }) {
				return fmt.Errorf("%w: gate %q: external value for replica %q, which is not in the soak", ErrBadRequest, name, v.Replica)
			}
			if seen[v.Replica] {
				return fmt.Errorf("%w: gate %q: two external values for replica %q", ErrBadRequest, name, v.Replica)
			}
			seen[v.Replica] = true
		}
	}
	return nil
}

// evalExternal judges a gate decided outside PromQL from the values the
// caller gave; every reason says what decided it.
func evalExternal(g Spec, rs replicaSet, vals []ExternalValue, w Window) GateResult {
	gr := GateResult{Name: g.Name, Threshold: g.Threshold(), DecidedFrom: g.External}
	values := map[string]float64{}
	evidence := map[string]string{}
	for _, v := range vals {
		values[v.Replica] = v.Value
		evidence[v.Replica] = v.Evidence
	}
	judge(&gr, g, rs.replicas, values, w.Duration())
	for i, rv := range gr.Values {
		switch {
		case rv.Missing && rv.Reason != "":
			gr.Values[i].Reason = fmt.Sprintf("%s %s: no value: %s decides this gate, and gave none for this replica", rv.Role, rv.Replica, g.External)
		case evidence[rv.Replica] != "" && rv.Reason != "":
			gr.Values[i].Reason = rv.Reason + " (" + evidence[rv.Replica] + ")"
		case evidence[rv.Replica] != "":
			gr.Values[i].Reason = evidence[rv.Replica]
		}
	}
	var why []string
	for _, rv := range gr.Values {
		if rv.Verdict == gr.Verdict && rv.Verdict != "" && (rv.Verdict != Pass || rv.Role == string(roleCanary)) {
			why = append(why, rv.Reason)
		}
	}
	if len(why) > 0 {
		gr.Reason = joinReasons(why)
	}
	gr.Reason = "decided from " + g.External + ": " + gr.Reason
	return gr
}
