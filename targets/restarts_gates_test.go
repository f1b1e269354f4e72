package targets_test

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// historyMinutes is the length of the backfilled histories: the 24h window
// and the two hours before it, when the canaries restarted for the flag.
const historyMinutes = 26 * 60

// historyTimes places a history so that its window is the last 24h before
// an hour ago. Samples sit 7s past the minute and the window ends 30s
// past it, so no sample lies on a window edge.
func historyTimes() (start time.Time, window gates.Window) {
	end := time.Now().Add(-time.Hour).Truncate(time.Minute).Add(30 * time.Second)
	start = end.Add(-historyMinutes * time.Minute).Add(-23 * time.Second)
	return start, gates.Window{Start: end.Add(-24 * time.Hour), End: end}
}

func nodeTargets(names ...string) []gates.Target {
	var out []gates.Target
	for _, n := range names {
		out = append(out, gates.Target{Name: n, Selector: fmt.Sprintf("node_id=%q", n)})
	}
	return out
}

// restartSeen matches how a restarts reason times a restart.
var restartSeen = regexp.MustCompile(`restarts seen between (\S+) and (\S+)`)

// checkRestartTimed checks that gr fails the canary and times the restart
// whose first sample was at back: lo < back <= hi, at most a minute wide.
func checkRestartTimed(t *testing.T, res gates.Result, back time.Time) {
	t.Helper()
	if res.Verdict != gates.Fail || !strings.HasPrefix(res.Reason, "restarts: ") {
		t.Fatalf("verdict: got %s (%s), want a fail on restarts", res.Verdict, res.Reason)
	}
	m := restartSeen.FindStringSubmatch(res.Reason)
	if m == nil {
		t.Fatalf("reason %q gives no time for the restart", res.Reason)
	}
	lo, err1 := time.Parse(time.RFC3339, m[1])
	hi, err2 := time.Parse(time.RFC3339, m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("reason %q: times do not parse: %v %v", res.Reason, err1, err2)
	}
	// RFC3339 drops fractions of a second: widen by one.
	if !lo.Before(back) || hi.Add(time.Second).Before(back) || hi.Sub(lo) > time.Minute+time.Second {
		t.Errorf("reason %q: the replica came back at %s, want it within (%s, %s], a minute at most", res.Reason, back.UTC().Format(time.RFC3339), lo.Format(time.RFC3339), hi.Format(time.RFC3339))
	}
	if !strings.Contains(res.Reason, "canary n2: 1 restarts in 24h, limit 0") {
		t.Errorf("reason %q: want one restart of canary n2 counted", res.Reason)
	}
}

// TestLanectlRestartFailsTheSoak is a canary that restarts 12h into its
// soak, in 24h of history in a real Prometheus: its counters reset, its
// process start time changes and it misses two scrapes, then comes back
// with the flag on. The soak fails on restarts, timing the restart; the
// restart that picked up the flag, before the window, is not counted.
func TestLanectlRestartFailsTheSoak(t *testing.T) {
	start, window := historyTimes()
	flagOn := historyMinutes - 24*60 - 10
	crash := historyMinutes - 12*60
	for _, tt := range []struct {
		name    string
		crashes []int
	}{{"restart 12h in", []int{crash}}, {"no restart", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			rs := []promtest.ReplicaHistory{
				{Name: "n1", FlagOn: -1, DropEvery: 100},
				{Name: "n2", FlagOn: flagOn, DropEvery: 120, Crashes: tt.crashes},
				{Name: "n3", FlagOn: -1, DropEvery: 100},
			}
			hist := filepath.Join(t.TempDir(), "history.om")
			if err := promtest.WriteHistory(hist, start, time.Minute, historyMinutes, rs); err != nil {
				t.Fatal(err)
			}
			prom := promtest.Start(t, promtest.Options{Backfill: hist})
			pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			lanectl := targets.Lanectl()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := gates.Evaluate(ctx, pq, lanectl.Gates(), gates.Request{
				PresenceMetric: lanectl.PresenceMetric,
				Canaries:       nodeTargets("n2"),
				Baselines:      nodeTargets("n1", "n3"),
				Window:         window,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range res.Gates {
				t.Logf("%-22s %-12s %s", g.Name, g.Verdict, g.Reason)
			}
			if tt.crashes == nil {
				if res.Verdict != gates.Pass {
					t.Fatalf("verdict: got %s (%s), want pass", res.Verdict, res.Reason)
				}
				return
			}
			checkRestartTimed(t, res, start.Add(time.Duration(crash+2)*time.Minute))
		})
	}
}

// TestElastickvRestartFailsTheSoak is the same restart on stock elastickv,
// which has no process collector: counter resets show it.
func TestElastickvRestartFailsTheSoak(t *testing.T) {
	start, window := historyTimes()
	flagOn := historyMinutes - 24*60 - 10
	crash := historyMinutes - 12*60
	for _, tt := range []struct {
		name  string
		crash int
	}{{"restart 12h in", crash}, {"no restart", -1}} {
		t.Run(tt.name, func(t *testing.T) {
			rs := []elastickvReplica{
				{name: "n1", restart: -1, crash: -1, dropEvery: 1000},
				{name: "n2", restart: flagOn, crash: tt.crash, dropEvery: 1200},
				{name: "n3", restart: -1, crash: -1, dropEvery: 1000},
			}
			hist := filepath.Join(t.TempDir(), "history.om")
			if err := writeElastickvHistory(hist, start, time.Minute, historyMinutes, rs); err != nil {
				t.Fatal(err)
			}
			prom := promtest.Start(t, promtest.Options{Backfill: hist})
			pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			ekv := targets.Elastickv()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			res, err := gates.Evaluate(ctx, pq, ekv.Gates(), gates.Request{
				PresenceMetric: ekv.PresenceMetric,
				Canaries:       nodeTargets("n2"),
				Baselines:      nodeTargets("n1", "n3"),
				Window:         window,
				External:       flagValues("n2", "n1", "n3"),
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range res.Gates {
				t.Logf("%-22s %-12s %s", g.Name, g.Verdict, g.Reason)
			}
			if tt.crash < 0 {
				if res.Verdict != gates.Pass {
					t.Fatalf("verdict: got %s (%s), want pass", res.Verdict, res.Reason)
				}
				return
			}
			checkRestartTimed(t, res, start.Add(time.Duration(crash+2)*time.Minute))
		})
	}
}

// flagValues are the flag gate's values as the rollout finds them from
// its journal and the read command: on for the canary, off for the rest.
func flagValues(canary string, baselines ...string) map[string][]gates.ExternalValue {
	vs := []gates.ExternalValue{{Replica: canary, Value: 1, Evidence: "on per the journal and commands.read"}}
	for _, b := range baselines {
		vs = append(vs, gates.ExternalValue{Replica: b, Value: 0, Evidence: "off per the journal and commands.read"})
	}
	return map[string][]gates.ExternalValue{"flag": vs}
}
