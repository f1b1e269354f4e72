package gates_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/targets"
)

// TestExternalGate holds the contract of a gate decided outside PromQL:
// its values come from the request, are judged against its limits like
// any other, and a replica without one is inconclusive, never a pass.
func TestExternalGate(t *testing.T) {
	flag := gates.Spec{
		Name: "flag", What: "flag on for", Kind: gates.KindFraction, Scope: gates.ScopeCanary,
		External: "the journal and commands.read", Min: f(1), BaselineMax: f(0), Violation: gates.Fail,
	}
	if err := (gates.Set{flag}).Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	withQuery := flag
	withQuery.Query = "vector(1)"
	if err := (gates.Set{withQuery}).Validate(); err == nil || !strings.Contains(err.Error(), "has no query") {
		t.Errorf("external gate with a query: got %v, want an error", err)
	}
	eng := engineOver(t, cluster())
	tests := []struct {
		name       string
		values     []gates.ExternalValue
		want       gates.Verdict
		wantReason string
	}{
		{
			name: "on for the canary, off for the baselines",
			values: []gates.ExternalValue{
				{Replica: "n2", Value: 1, Evidence: "enabled 09:00 per the journal; commands.read printed 1"},
				{Replica: "n1", Value: 0}, {Replica: "n3", Value: 0},
			},
			want:       gates.Pass,
			wantReason: "decided from the journal and commands.read: canary n2: flag on for 100% of the window (2h), need at least 100% (enabled 09:00 per the journal; commands.read printed 1)",
		},
		{
			name:       "the canary read the flag off",
			values:     []gates.ExternalValue{{Replica: "n2", Value: 0, Evidence: "commands.read printed nothing"}, {Replica: "n1", Value: 0}, {Replica: "n3", Value: 0}},
			want:       gates.Fail,
			wantReason: "canary n2: flag on for 0% of the window (2h), need at least 100% (commands.read printed nothing)",
		},
		{
			name:       "no values at all",
			want:       gates.Inconclusive,
			wantReason: "decided from the journal and commands.read: canary n2: no value: the journal and commands.read decides this gate, and gave none for this replica",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := gates.Request{
				PresenceMetric: targets.LanectlLanesEnabled,
				Canaries:       replicaTargets("n2"),
				Baselines:      replicaTargets("n1", "n3"),
				Window:         gates.Window{Start: at(60), End: at(180)},
				Now:            at(180),
			}
			if tt.values != nil {
				req.External = map[string][]gates.ExternalValue{"flag": tt.values}
			}
			res, err := gates.Evaluate(context.Background(), eng, gates.Set{flag}, req)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			g := res.Gates[0]
			if g.Verdict != tt.want || !strings.Contains(g.Reason, tt.wantReason) {
				t.Errorf("got %s (%s), want %s containing %q", g.Verdict, g.Reason, tt.want, tt.wantReason)
			}
			if g.Query != "" || g.DecidedFrom != flag.External {
				t.Errorf("query %q, decided from %q: want no query, decided from %q", g.Query, g.DecidedFrom, flag.External)
			}
		})
	}
	for name, ext := range map[string]map[string][]gates.ExternalValue{
		"unknown gate":        {"nope": {{Replica: "n2", Value: 1}}},
		"replica not in soak": {"flag": {{Replica: "n9", Value: 1}}},
		"replica twice":       {"flag": {{Replica: "n2", Value: 1}, {Replica: "n2", Value: 1}}},
	} {
		req := gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets("n2"), Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180), External: ext}
		if _, err := gates.Evaluate(context.Background(), eng, gates.Set{flag}, req); !errors.Is(err, gates.ErrBadRequest) {
			t.Errorf("%s: got %v, want ErrBadRequest", name, err)
		}
	}
}
