package targets_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
	"github.com/lanectl/lanectl/targets/elastickvtest"
)

// TestElastickvGatesOverTheCaptures judges the elastickv gate set over
// the real scrapes of stock elastickv (elastickvtest), served as three
// replicas' /metrics and scraped by a real Prometheus and by the embedded
// store: baselines n1 and n3 on the legacy layout, canary n2 after its
// restart with the four-lane flag. Only the traffic counters grow between
// scrapes (by their captured values), so the ratio gates have messages to
// judge; every other value is as captured. Every gate yields a value for
// every replica, and the soak passes. When the canary instead starts on
// the legacy capture and restarts into the four-lane one inside the
// window, the restarts gate fails it.
func TestElastickvGatesOverTheCaptures(t *testing.T) {
	grow := []string{targets.ElastickvSendStream, targets.ElastickvDropped, targets.ElastickvErrors}
	for _, tt := range []struct {
		name    string
		canary  string
		restart string // the capture the canary restarts into mid-window
		want    gates.Verdict
	}{
		{name: "four-lane canary against legacy baselines", canary: "n2-fourlane-n2", want: gates.Pass},
		{name: "a canary restarting inside the window", canary: "legacy-n2", restart: "n2-fourlane-n2", want: gates.Fail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n1 := elastickvtest.ServeGrowing(t, "legacy-n1", grow...)
			n2 := elastickvtest.ServeGrowing(t, tt.canary, grow...)
			n3 := elastickvtest.ServeGrowing(t, "legacy-n3", grow...)
			urls := []string{n1.URL + "/metrics", n2.URL + "/metrics", n3.URL + "/metrics"}
			const interval = time.Second
			prom := promtest.Start(t, promtest.Options{Targets: urls, ScrapeInterval: interval})
			pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			emb, err := query.NewEmbedded(ctx, urls, interval, query.EmbeddedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = emb.Close() }()
			scrapedPast := func(at time.Time) {
				expr := fmt.Sprintf(`count(timestamp(up == 1) >= %.3f)`, float64(at.UnixMilli())/1000)
				for name, q := range map[string]gates.Querier{"Prometheus": pq, "the embedded store": emb} {
					promtest.Eventually(t, 30*time.Second, name+" to scrape every replica past "+at.Format(time.RFC3339Nano), func() bool {
						vec, _, err := q.Query(ctx, expr, time.Now())
						return err == nil && len(vec) == 1 && vec[0].Value == 3
					})
				}
			}
			// Both stores have scraped every replica before the window opens.
			scrapedPast(time.Now())
			start := time.Now()
			end := start.Add(16 * time.Second)
			if tt.restart != "" {
				time.Sleep(time.Until(start.Add(8 * time.Second)))
				if err := n2.Switch(tt.restart); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Until(end))
			scrapedPast(end)

			ekv := targets.Elastickv()
			req := gates.Request{
				PresenceMetric: ekv.PresenceMetric,
				Canaries:       nodeTargets("n2"),
				Baselines:      nodeTargets("n1", "n3"),
				Window:         gates.Window{Start: start, End: end},
				Step:           2 * interval,
				External:       flagValues("n2", "n1", "n3"),
			}
			for name, q := range map[string]gates.Querier{"Prometheus": pq, "embedded store": emb} {
				res, err := gates.Evaluate(ctx, q, ekv.Gates(), req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				for _, g := range res.Gates {
					t.Logf("%s: %-20s %-12s %s", name, g.Name, g.Verdict, g.Reason)
				}
				if res.Verdict != tt.want {
					t.Errorf("%s: verdict %s (%s), want %s", name, res.Verdict, res.Reason, tt.want)
				}
				if tt.want == gates.Fail {
					for _, g := range res.Gates {
						if g.Name == "restarts" && g.Verdict != gates.Fail {
							t.Errorf("%s: restarts is %s (%s), want fail", name, g.Verdict, g.Reason)
						}
					}
					continue
				}
				for _, g := range res.Gates {
					for _, v := range g.Values {
						if v.Missing || math.IsNaN(v.Value) {
							t.Errorf("%s: gate %s has no value for %s %s", name, g.Name, v.Role, v.Replica)
						}
					}
				}
			}
		})
	}
}
