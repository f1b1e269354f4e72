package gates_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

// series is a synthetic data set in the promtool input_series notation,
// keyed by series descriptor, sampled every minute from t=0.
type series map[string]string

// steps is how many one-minute steps every series spans (3h).
const steps = 180

func (s series) replica(id string, flagOn bool, lane string) {
	flag := fmt.Sprintf("0x%d", steps)
	if flagOn {
		flag = fmt.Sprintf("1x%d", steps)
	}
	s.set(id, "elastickv_raft_dispatcher_lanes_enabled", "", flag)
	s.set(id, "elastickv_fsm_apply_sync_mode", `mode="sync"`, fmt.Sprintf("1x%d", steps))
	s.set(id, "elastickv_fsm_apply_sync_mode", `mode="nosync"`, fmt.Sprintf("0x%d", steps))
	s.set(id, "elastickv_raft_leader_changes_seen_total", "", fmt.Sprintf("3x%d", steps))
	s.set(id, "elastickv_raft_last_contact_seconds", "", fmt.Sprintf("0.2x%d", steps))
	// Started an hour before the history, and running since.
	s.set(id, "process_start_time_seconds", "", fmt.Sprintf("-3600x%d", steps))
	s.set(id, "elastickv_raft_dispatch_sent_total", `lane="heartbeat", peer="9"`, fmt.Sprintf("0+10x%d", steps))
	s.set(id, "elastickv_raft_dispatch_sent_total", `lane="`+lane+`", peer="9"`, fmt.Sprintf("0+100x%d", steps))
	// One drop per 101 messages: a 0.99% drop ratio.
	s.set(id, "elastickv_raft_dispatch_dropped_total", `lane="`+lane+`", peer="9"`, fmt.Sprintf("0+1x%d", steps))
}

func (s series) set(id, metric, extra, values string) {
	lbls := `node_id="` + id + `"`
	if extra != "" {
		lbls += ", " + extra
	}
	s[metric+"{"+lbls+"}"] = values
}

func (s series) del(id, metric, extra string) {
	lbls := `node_id="` + id + `"`
	if extra != "" {
		lbls += ", " + extra
	}
	delete(s, metric+"{"+lbls+"}")
}

func (s series) load() string {
	var b strings.Builder
	b.WriteString("load 1m\n")
	for _, k := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, "  %s %s\n", k, s[k])
	}
	return b.String()
}

// cluster is a canary n2 with the flag and baselines n1, n3 without it.
func cluster() series {
	s := series{}
	s.replica("n1", false, "normal")
	s.replica("n2", true, "replication")
	s.replica("n3", false, "normal")
	return s
}

// failedEvents is true when a gate that times its events failed.
func failedEvents(r gates.Result) bool {
	for _, g := range r.Gates {
		if spec, _ := targets.Lanectl().Gates().Lookup(g.Name); spec.Events && g.Verdict != gates.Pass {
			return true
		}
	}
	return false
}

func replicaTargets(names ...string) []gates.Target {
	var out []gates.Target
	for _, n := range names {
		out = append(out, gates.Target{Name: n, Selector: `node_id="` + n + `"`})
	}
	return out
}

func at(min int) time.Time { return time.Unix(0, 0).UTC().Add(time.Duration(min) * time.Minute) }

// countingQuerier counts the queries it forwards.
type countingQuerier struct {
	gates.Querier
	mu      sync.Mutex
	queries []string
}

func (c *countingQuerier) Query(ctx context.Context, expr string, ts time.Time) (query.Vector, query.Warnings, error) {
	c.mu.Lock()
	c.queries = append(c.queries, expr)
	c.mu.Unlock()
	return c.Querier.Query(ctx, expr, ts)
}

func engineOver(t *testing.T, s series) *query.Engine {
	t.Helper()
	st := promqltest.LoadedStorage(t, s.load())
	e := query.NewEngine(st, nil)
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEvaluateSyntheticSeries(t *testing.T) {
	type tc struct {
		name      string
		edit      func(s series)
		canaries  []string
		baselines []string
		start     int // window start, minutes
		end       int
		now       int
		syncMode  string
		want      gates.Verdict
		wantGates map[string]gates.Verdict
		// wantReason must appear in the reason of the first gate listed
		// in wantGates that is not a pass (or of the result).
		wantReason string
	}
	all := func(v gates.Verdict) map[string]gates.Verdict {
		m := map[string]gates.Verdict{}
		for _, n := range targets.Lanectl().Gates().Names() {
			m[n] = v
		}
		return m
	}
	tests := []tc{
		{
			name:       "healthy canary passes every gate",
			want:       gates.Pass,
			wantGates:  all(gates.Pass),
			wantReason: "all 9 gates pass over 2h",
		},
		{
			name: "a canary that restarted inside the window fails, with the time of the restart",
			edit: func(s series) {
				// Down at minutes 100 and 101, running again from 102 with
				// a new start time and counters from zero.
				s.set("n2", "process_start_time_seconds", "", "-3600x99 _ _ 6115x78")
				s.set("n2", "elastickv_raft_dispatch_sent_total", `lane="replication", peer="9"`, "0+100x99 _ _ 0+100x78")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"restarts": gates.Fail, "coverage": gates.Pass},
			wantReason: "canary n2: 1 restarts in 2h, limit 0; restarts seen between 1970-01-01T01:41:00Z and 1970-01-01T01:42:00Z",
		},
		{
			name: "a baseline's restart is shown, not judged",
			edit: func(s series) {
				s.set("n1", "process_start_time_seconds", "", "-3600x99 _ _ 6115x78")
			},
			want:      gates.Pass,
			wantGates: map[string]gates.Verdict{"restarts": gates.Pass},
		},
		{
			name: "the restart that picked up the flag, before the window, is not counted",
			edit: func(s series) {
				s.set("n2", "process_start_time_seconds", "", "-3600x50 3000x129")
			},
			want:      gates.Pass,
			wantGates: map[string]gates.Verdict{"restarts": gates.Pass},
		},
		{
			name: "heartbeat drops on the canary fail",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "0+1x180")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"heartbeat_drops": gates.Fail, "coverage": gates.Pass},
			wantReason: "canary n2: 120 heartbeat-lane drops in 2h, limit 0",
		},
		{
			name: "heartbeat drops on a baseline only are shown but not judged",
			edit: func(s series) {
				s.set("n1", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "0+1x180")
			},
			want:      gates.Pass,
			wantGates: map[string]gates.Verdict{"heartbeat_drops": gates.Pass},
		},
		{
			name: "drops before a counter reset inside the window still count",
			edit: func(s series) {
				// 5 drops, then the replica restarts and the counter is 0 again.
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "0x99 5 0x80")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"heartbeat_drops": gates.Fail},
			wantReason: "canary n2: 5 heartbeat-lane drops in 2h",
		},
		{
			name: "a restart resetting every counter is not a regression",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_sent_total", `lane="replication", peer="9"`, "0+100x99 0+100x80")
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="replication", peer="9"`, "0+1x99 0+1x80")
				s.set("n2", "elastickv_raft_leader_changes_seen_total", "", "3x99 1x80")
			},
			want:      gates.Pass,
			wantGates: all(gates.Pass),
		},
		{
			name: "a drop counter created inside the window counts its first value",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "_x120 1x60")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"heartbeat_drops": gates.Fail},
			wantReason: "canary n2: 1 heartbeat-lane drops",
		},
		{
			name: "counters present from the first sample of history are not counted as created",
			// The window starts with the data, as in a fresh embedded store:
			// leader_changes 3 must not read as 3 changes.
			start:     0,
			end:       120,
			now:       120,
			want:      gates.Pass,
			wantGates: all(gates.Pass),
		},
		{
			name: "a gap in the canary's metrics is not enough data",
			edit: func(s series) {
				for k, v := range s {
					if strings.Contains(k, `node_id="n2"`) {
						s[k] = "_x120 " + strings.SplitN(v, "x", 2)[0] + "x60"
					}
				}
				// Keep the counters counting where they exist.
				s.set("n2", "elastickv_raft_dispatch_sent_total", `lane="heartbeat", peer="9"`, "_x120 0+10x60")
				s.set("n2", "elastickv_raft_dispatch_sent_total", `lane="replication", peer="9"`, "_x120 0+100x60")
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="replication", peer="9"`, "_x120 0+1x60")
			},
			want:       gates.Inconclusive,
			wantGates:  map[string]gates.Verdict{"coverage": gates.Inconclusive, "heartbeat_drops": gates.Pass},
			wantReason: "canary n2: metrics present for 51.26% of the window (2h), need at least 90%",
		},
		{
			name: "no traffic on the canary's replication lane is NaN, inconclusive",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_sent_total", `lane="replication", peer="9"`, "0x180")
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="replication", peer="9"`, "0x180")
			},
			want:       gates.Inconclusive,
			wantGates:  map[string]gates.Verdict{"replication_drop_ratio": gates.Inconclusive, "coverage": gates.Pass},
			wantReason: "canary n2: replication/other-lane drop ratio is NaN",
		},
		{
			name: "a NaN sample in a gauge does not pass the gate",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_last_contact_seconds", "", strings.Repeat("NaN ", steps+1))
			},
			want:       gates.Inconclusive,
			wantGates:  map[string]gates.Verdict{"last_contact": gates.Inconclusive},
			wantReason: "is NaN",
		},
		{
			name:       "a canary nobody exports metrics for has no data anywhere",
			canaries:   []string{"n9"},
			want:       gates.Inconclusive,
			wantGates:  all(gates.Inconclusive),
			wantReason: "canary n9: no data for metrics present for in the last 2h",
		},
		{
			name: "canary dropping more than the worst baseline fails",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="replication", peer="9"`, "0+5x180")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"replication_drop_ratio": gates.Fail},
			wantReason: "canary n2: replication/other-lane drop ratio 4.762% over 2h, limit 1.189% (worst baseline n1: 0.9901% x 1.1 + 0.1%)",
		},
		{
			name: "canary dropping less than the baselines passes",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="replication", peer="9"`, "0+0.2x180")
			},
			want:      gates.Pass,
			wantGates: map[string]gates.Verdict{"replication_drop_ratio": gates.Pass},
		},
		{
			name: "transport errors above the baselines fail",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_errors_total", `lane="replication", peer="9"`, "0+10x180")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"dispatch_error_ratio": gates.Fail},
			wantReason: "canary n2: dispatch error ratio",
		},
		{
			name: "the flag coming on in the middle of the window fails the flag gate",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatcher_lanes_enabled", "", "0x119 1x60")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"flag": gates.Fail},
			wantReason: "canary n2: four-lane dispatcher on for 50.83% of the window (2h), need at least 100%",
		},
		{
			name: "the flag going off in the middle of the window fails the flag gate",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatcher_lanes_enabled", "", "1x150 0x29")
			},
			want:      gates.Fail,
			wantGates: map[string]gates.Verdict{"flag": gates.Fail},
		},
		{
			name: "a window starting when the flag came on passes",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatcher_lanes_enabled", "", "0x59 1x120")
			},
			start:     60,
			end:       180,
			want:      gates.Pass,
			wantGates: all(gates.Pass),
		},
		{
			name: "a baseline with the flag on cannot be a baseline",
			edit: func(s series) {
				s.set("n3", "elastickv_raft_dispatcher_lanes_enabled", "", "0x150 1x29")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"flag": gates.Fail},
			wantReason: "baseline n3: four-lane dispatcher on for",
		},
		{
			name: "the wrong sync mode fails",
			edit: func(s series) {
				s.set("n2", "elastickv_fsm_apply_sync_mode", `mode="sync"`, "0x180")
				s.set("n2", "elastickv_fsm_apply_sync_mode", `mode="nosync"`, "1x180")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"sync_mode": gates.Fail},
			wantReason: "canary n2: in the expected sync mode for 0% of the window",
		},
		{
			name:       "expecting nosync from replicas that run sync fails",
			syncMode:   "nosync",
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"sync_mode": gates.Fail},
			wantReason: "canary n2: in the expected sync mode for 0% of the window",
		},
		{
			name: "more leader changes than the baselines fail",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_leader_changes_seen_total", "", "3x100 4 5 6 7 8 9 10x74")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"leader_changes": gates.Fail},
			wantReason: "canary n2: 7 leader changes seen in 2h, limit 1 (worst baseline n1: 0 x 1 + 1)",
		},
		{
			name: "leader contact lost for longer than the election timeout fails",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_last_contact_seconds", "", "0.2x100 3.5 0.2x79")
			},
			want:       gates.Fail,
			wantGates:  map[string]gates.Verdict{"last_contact": gates.Fail},
			wantReason: "canary n2: max time without contact from the leader 3.5s over 2h, limit 1s",
		},
		{
			name:       "without baselines the relative gates cannot decide",
			baselines:  []string{},
			want:       gates.Inconclusive,
			wantGates:  map[string]gates.Verdict{"replication_drop_ratio": gates.Inconclusive, "heartbeat_drops": gates.Pass, "flag": gates.Pass},
			wantReason: "no baseline replica to compare with",
		},
		{
			name:       "a passing window that is not over is inconclusive",
			start:      60,
			end:        60 + 24*60,
			now:        180,
			want:       gates.Inconclusive,
			wantGates:  all(gates.Pass),
			wantReason: "window is not over: 2h of 24h elapsed",
		},
		{
			name: "a failing gate fails a window that is not over",
			edit: func(s series) {
				s.set("n2", "elastickv_raft_dispatch_dropped_total", `lane="heartbeat", peer="9"`, "0+1x180")
			},
			start: 60,
			end:   60 + 24*60,
			now:   180,
			want:  gates.Fail,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := cluster()
			if tt.edit != nil {
				tt.edit(s)
			}
			if tt.canaries == nil {
				tt.canaries = []string{"n2"}
			}
			if tt.baselines == nil {
				tt.baselines = []string{"n1", "n3"}
			}
			if tt.end == 0 {
				tt.start, tt.end = 60, 180
			}
			if tt.now == 0 {
				tt.now = tt.end
			}
			q := &countingQuerier{Querier: engineOver(t, s)}
			req := gates.Request{PresenceMetric: targets.LanectlLanesEnabled,
				Canaries:       replicaTargets(tt.canaries...),
				Baselines:      replicaTargets(tt.baselines...),
				Window:         gates.Window{Start: at(tt.start), End: at(tt.end)},
				ExpectSyncMode: tt.syncMode,
				Now:            at(tt.now),
			}
			res, err := gates.Evaluate(context.Background(), q, targets.Lanectl().Gates(), req)
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			if res.Verdict != tt.want {
				t.Errorf("verdict: got %s (%s), want %s", res.Verdict, res.Reason, tt.want)
			}
			// One query per gate; timing a failed events gate's events
			// takes its own probes after that.
			want := len(targets.Lanectl().Gates())
			if got := len(q.queries); got < want || (got > want && !failedEvents(res)) {
				t.Errorf("queries issued: got %d, want %d (one per gate)", got, want)
			}
			byName := map[string]gates.GateResult{}
			for _, g := range res.Gates {
				byName[g.Name] = g
			}
			reasons := []string{res.Reason}
			for _, name := range slices.Sorted(maps.Keys(tt.wantGates)) {
				g, ok := byName[name]
				if !ok {
					t.Errorf("gate %s: missing from result", name)
					continue
				}
				if g.Verdict != tt.wantGates[name] {
					t.Errorf("gate %s: got %s (%s), want %s\nquery: %s", name, g.Verdict, g.Reason, tt.wantGates[name], g.Query)
				}
				reasons = append(reasons, g.Reason)
			}
			if tt.wantReason != "" && !slices.ContainsFunc(reasons, func(r string) bool { return strings.Contains(r, tt.wantReason) }) {
				t.Errorf("reason: got %q, want one containing %q", reasons, tt.wantReason)
			}
			if t.Failed() {
				for _, g := range res.Gates {
					t.Logf("%s %s: %s", g.Name, g.Verdict, g.Reason)
				}
			}
		})
	}
}

// TestCoverageFromTheFirstSample pins where coverage starts counting: a
// replica first scraped a moment after the window's start (an embedded store
// started with the soak) is fully covered, while one first scraped more than
// the lookback after the start is short of data.
func TestCoverageFromTheFirstSample(t *testing.T) {
	coverage, ok := targets.Lanectl().Gates().Lookup("coverage")
	if !ok {
		t.Fatal("no coverage gate in the default set")
	}
	// The window starts 10s before a step boundary and spans five 1m steps;
	// samples come every 10s from the first one to the window's end.
	start, end := 50*time.Second, 350*time.Second
	for _, tc := range []struct {
		name  string
		first time.Duration
		want  gates.Verdict
		value float64
	}{
		{name: "first sample 20s after the start", first: 70 * time.Second, want: gates.Pass, value: 1},
		{name: "first sample 140s after the start", first: 190 * time.Second, want: gates.Inconclusive, value: 0.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var values []string
			for at := time.Duration(0); at <= end; at += 10 * time.Second {
				if at < tc.first {
					values = append(values, "_")
				} else {
					values = append(values, "1")
				}
			}
			var load strings.Builder
			load.WriteString("load 10s\n")
			for _, id := range []string{"n1", "n2"} {
				for _, metric := range []string{
					"elastickv_raft_dispatcher_lanes_enabled",
					`elastickv_fsm_apply_sync_mode{mode="sync"`,
					"elastickv_raft_leader_changes_seen_total",
					"elastickv_raft_last_contact_seconds",
					`elastickv_raft_dispatch_sent_total{lane="heartbeat"`,
				} {
					if !strings.Contains(metric, "{") {
						metric += "{"
					} else {
						metric += ", "
					}
					fmt.Fprintf(&load, "  %snode_id=%q} %s\n", metric, id, strings.Join(values, " "))
				}
			}
			st := promqltest.LoadedStorage(t, load.String())
			e := query.NewEngine(st, nil)
			t.Cleanup(func() { _ = e.Close() })
			epoch := time.Unix(0, 0).UTC()
			res, err := gates.Evaluate(context.Background(), e, gates.Set{coverage}, gates.Request{PresenceMetric: targets.LanectlLanesEnabled,
				Canaries:  replicaTargets("n2"),
				Baselines: replicaTargets("n1"),
				Window:    gates.Window{Start: epoch.Add(start), End: epoch.Add(end)},
				Step:      time.Minute,
				Now:       epoch.Add(end),
			})
			if err != nil {
				t.Fatalf("Evaluate: %v", err)
			}
			g := res.Gates[0]
			if g.Verdict != tc.want {
				t.Errorf("coverage: got %s (%s), want %s\nquery: %s", g.Verdict, g.Reason, tc.want, g.Query)
			}
			for _, v := range g.Values {
				if v.Missing || v.Value != tc.value {
					t.Errorf("coverage of %s: got %v (missing %v), want %v", v.Replica, v.Value, v.Missing, tc.value)
				}
			}
		})
	}
}
