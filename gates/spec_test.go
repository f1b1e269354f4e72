package gates_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

func f(v float64) *float64 { return &v }
func s(v string) *string   { return &v }

func TestWorst(t *testing.T) {
	tests := []struct{ a, b, want gates.Verdict }{
		{gates.Pass, gates.Pass, gates.Pass},
		{gates.Pass, gates.Inconclusive, gates.Inconclusive},
		{gates.Inconclusive, gates.Pass, gates.Inconclusive},
		{gates.Inconclusive, gates.Fail, gates.Fail},
		{gates.Fail, gates.Pass, gates.Fail},
		{gates.Pass, "", gates.Fail},
		{"bogus", gates.Pass, gates.Fail},
	}
	for _, tt := range tests {
		if got := gates.Worst(tt.a, tt.b); got != tt.want {
			t.Errorf("Worst(%q, %q): got %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestSetWith(t *testing.T) {
	tests := []struct {
		name    string
		o       gates.Overrides
		wantErr []string // substrings, all must appear
		check   func(t *testing.T, set gates.Set)
	}{
		{
			name: "limits are overridden, others kept",
			o:    gates.Overrides{"last_contact": {Max: f(2.5)}, "replication_drop_ratio": {Factor: f(2), Slack: f(0.01)}},
			check: func(t *testing.T, set gates.Set) {
				g, _ := set.Lookup("last_contact")
				if got, want := g.Threshold(), "canary <= 2.5s"; got != want {
					t.Errorf("last_contact threshold: got %q, want %q", got, want)
				}
				g, _ = set.Lookup("replication_drop_ratio")
				if got, want := g.Threshold(), "canary <= max(baseline) x 2 + 1%"; got != want {
					t.Errorf("replication_drop_ratio threshold: got %q, want %q", got, want)
				}
				g, _ = set.Lookup("heartbeat_drops")
				if got, want := g.Threshold(), "canary <= 0"; got != want {
					t.Errorf("heartbeat_drops threshold: got %q, want %q", got, want)
				}
				if d, _ := targets.Lanectl().Gates().Lookup("last_contact"); *d.Max != 1 {
					t.Errorf("default set changed by With: last_contact max %v", *d.Max)
				}
			},
		},
		{
			name: "a gate can be disabled",
			o:    gates.Overrides{"leader_changes": {Disabled: func() *bool { b := true; return &b }()}},
			check: func(t *testing.T, set gates.Set) {
				if g, _ := set.Lookup("leader_changes"); !g.Disabled {
					t.Errorf("leader_changes: got enabled, want disabled")
				}
			},
		},
		{
			name:    "unknown gate names are rejected with the known ones",
			o:       gates.Overrides{"heartbeat_drop": {Max: f(1)}},
			wantErr: []string{`gate "heartbeat_drop": unknown gate`, "heartbeat_drops, replication_drop_ratio"},
		},
		{
			name: "a plan can define a gate of its own",
			o: gates.Overrides{"proposals_failed": {
				Query: s(`{{increase "elastickv_raft_proposals_failed_total"}}`), Kind: func() *gates.Kind { k := gates.KindCount; return &k }(),
				Max: f(0), Help: s("no failed proposal on a canary"),
			}},
			check: func(t *testing.T, set gates.Set) {
				names := set.Names()
				if got, want := names[len(names)-1], "proposals_failed"; got != want {
					t.Fatalf("last gate: got %q, want the defined %q after the target's", got, want)
				}
				g, _ := set.Lookup("proposals_failed")
				if g.Scope != gates.ScopeCanary || g.Violation != gates.Fail || g.What != "proposals_failed" || g.Help != "no failed proposal on a canary" {
					t.Errorf("defined gate: got %+v, want scope canary, violation fail, what its name and the help given", g)
				}
				if got, want := g.Threshold(), "canary <= 0"; got != want {
					t.Errorf("threshold: got %q, want %q", got, want)
				}
			},
		},
		{
			name:    "a defined gate needs a kind",
			o:       gates.Overrides{"proposals_failed": {Query: s(`vector(0)`), Max: f(0)}},
			wantErr: []string{`gate "proposals_failed": unknown gate`, "give at least query, kind and a limit"},
		},
		{
			name:    "a defined gate needs a limit",
			o:       gates.Overrides{"proposals_failed": {Query: s(`vector(0)`), Kind: func() *gates.Kind { k := gates.KindCount; return &k }()}},
			wantErr: []string{`gate "proposals_failed"`, "no limit"},
		},
		{
			name:    "a kind must be one gates know",
			o:       gates.Overrides{"last_contact": {Kind: func() *gates.Kind { k := gates.Kind("bytes"); return &k }()}},
			wantErr: []string{`gate "last_contact"`, `kind "bytes"`},
		},
		{
			name:    "PromQL that does not parse is rejected with its position",
			o:       gates.Overrides{"last_contact": {Query: s(`max by ({{.By}}) (max_over_time(elastickv_raft_last_contact_seconds{{sel}}[{{.Window}}])`)}},
			wantErr: []string{`gate "last_contact"`, "query does not parse", "1:", "parse error", "^"},
		},
		{
			name:    "a template that does not render is rejected",
			o:       gates.Overrides{"last_contact": {Query: s(`max({{.Nope}})`)}},
			wantErr: []string{`gate "last_contact"`, "template", "Nope"},
		},
		{
			name:    "min above max is rejected",
			o:       gates.Overrides{"coverage": {Max: f(0.5)}},
			wantErr: []string{`gate "coverage"`, "min 0.9 is above max 0.5"},
		},
		{
			name:    "negative slack is rejected",
			o:       gates.Overrides{"leader_changes": {Slack: f(-1)}},
			wantErr: []string{`gate "leader_changes"`, "slack -1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := targets.Lanectl().Gates().With(tt.o)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("With: got no error, want one containing %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("With error: got %q, want it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("With: %v", err)
			}
			tt.check(t, set)
		})
	}
}

func TestParseErrorPositionPointsAtTheMistake(t *testing.T) {
	_, err := targets.Lanectl().Gates().With(gates.Overrides{"last_contact": {Query: s(`max by ({{.By}}) (elastickv_raft_last_contact_seconds{{sel}} +)`)}})
	if err == nil {
		t.Fatal("With: got no error, want a parse error")
	}
	if !errors.Is(err, gates.ErrBadSpec) || !errors.Is(err, query.ErrBadQuery) {
		t.Errorf("With error %v: want it to wrap ErrBadSpec and query.ErrBadQuery", err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) < 3 {
		t.Fatalf("error: got %q, want the query line and a caret under it", err)
	}
	query, caret := lines[len(lines)-2], lines[len(lines)-1]
	col := strings.Index(caret, "^")
	if col < 0 || col >= len(query) || query[col] != ')' {
		t.Errorf("caret at column %d of %q: want it under the unexpected ')'", col, query)
	}
}

func TestEvaluateRejectsBadRequests(t *testing.T) {
	eng := engineOver(t, cluster())
	tests := []struct {
		name string
		req  gates.Request
		want string
	}{
		{"no canary", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180)}, "no canary"},
		{"window in the future", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets("n2"), Window: gates.Window{Start: at(200), End: at(300)}, Now: at(180)}, "window starts at 1970-01-01T03:20:00Z, which is in the future"},
		{"window ends before it starts", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets("n2"), Window: gates.Window{Start: at(100), End: at(60)}, Now: at(180)}, "is not after its start"},
		{"replica twice", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets("n2"), Baselines: replicaTargets("n2"), Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180)}, `replica "n2" is listed twice`},
		{"bad selector", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: []gates.Target{{Name: "n2", Selector: `node_id=n2`}}, Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180)}, `replica "n2"`},
		{"no presence metric", gates.Request{Canaries: replicaTargets("n2"), Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180)}, `presence metric ""`},
		{"bad sync mode", gates.Request{PresenceMetric: targets.LanectlLanesEnabled, Canaries: replicaTargets("n2"), Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180), ExpectSyncMode: "fsync"}, `sync mode "fsync"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gates.Evaluate(context.Background(), eng, targets.Lanectl().Gates(), tt.req)
			if err == nil || !errors.Is(err, gates.ErrBadRequest) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Evaluate: got error %v, want ErrBadRequest containing %q", err, tt.want)
			}
		})
	}
}

// TestOneQueryPerGate holds for any number of replicas, and for selectors
// that share no label (joined with "or", still one query).
func TestOneQueryPerGate(t *testing.T) {
	data := series{}
	names := []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	for i, n := range names {
		lane := "normal"
		if i == 1 {
			lane = "replication"
		}
		data.replica(n, i == 1, lane)
	}
	tests := []struct {
		name      string
		canaries  []gates.Target
		baselines []gates.Target
	}{
		{"grouped by node_id", replicaTargets("n2"), replicaTargets("n1", "n3", "n4", "n5", "n6", "n7")},
		{"selectors with no common label", []gates.Target{{Name: "canary", Selector: `node_id=~"n2"`}}, []gates.Target{{Name: "b1", Selector: `node_id="n1"`}, {Name: "b3", Selector: `node_id="n3", job!="x"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := &countingQuerier{Querier: engineOver(t, data)}
			res, err := gates.Evaluate(context.Background(), q, targets.Lanectl().Gates(), gates.Request{PresenceMetric: targets.LanectlLanesEnabled,
				Canaries: tt.canaries, Baselines: tt.baselines,
				Window: gates.Window{Start: at(60), End: at(180)}, Now: at(180),
			})
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if got, want := len(q.queries), len(targets.Lanectl().Gates()); got != want {
				t.Errorf("queries: got %d, want %d", got, want)
			}
			if res.Verdict != gates.Pass {
				t.Errorf("verdict: got %s (%s), want pass", res.Verdict, res.Reason)
			}
			for _, g := range res.Gates {
				if got, want := len(g.Values), len(tt.canaries)+len(tt.baselines); got != want {
					t.Errorf("gate %s: got %d replica values, want %d", g.Name, got, want)
				}
				for _, v := range g.Values {
					if v.Missing {
						t.Errorf("gate %s: replica %s missing from the answer", g.Name, v.Replica)
					}
				}
			}
		})
	}
}

func TestReplicaValueJSON(t *testing.T) {
	tests := []struct {
		v    gates.ReplicaValue
		want string
	}{
		{gates.ReplicaValue{Replica: "n2", Role: "canary", Value: 3, Verdict: gates.Fail, Reason: "r"}, `{"replica":"n2","role":"canary","value":3,"verdict":"fail","reason":"r"}`},
		{gates.ReplicaValue{Replica: "n2", Role: "canary", Value: math.NaN()}, `{"replica":"n2","role":"canary","value":null}`},
		{gates.ReplicaValue{Replica: "n1", Role: "baseline", Missing: true}, `{"replica":"n1","role":"baseline","value":null}`},
		{gates.ReplicaValue{Replica: "n1", Role: "baseline", Value: math.Inf(1)}, `{"replica":"n1","role":"baseline","value":"+Inf"}`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(tt.v)
		if err != nil {
			t.Fatalf("marshal %+v: %v", tt.v, err)
		}
		if string(b) != tt.want {
			t.Errorf("marshal: got %s, want %s", b, tt.want)
		}
	}
}
