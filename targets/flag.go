package targets

import "strings"

// FlagProof returns what the target knows about flag; ok is false for a
// flag the target has never heard of (its value is compared as written).
func (t Target) FlagProof(flag string) (FlagProof, bool) {
	for _, p := range t.FlagProofs {
		if p.Flag == flag {
			return p, true
		}
	}
	return FlagProof{}, false
}

// FromMetrics says whether the target's metrics show the flag's value.
func (p FlagProof) FromMetrics() bool { return p.Holds != "" }

// Running is the value a replica runs with when its environment holds
// value ("" when unset): parsed as the replica parses it when the target
// knows how, else value itself with surrounding space trimmed.
func (p FlagProof) Running(value string) (running, warning string) {
	if p.Parse == nil {
		return strings.TrimSpace(value), ""
	}
	return p.Parse(value)
}
