package gates_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

// TestWarningsDemoteAPass: an answer with warnings (what Prometheus sends
// when a remote-read or federated store did not answer, so the data may be
// partial) turns a passing gate inconclusive and never changes a fail. A
// real Prometheus cannot be made to send warnings on demand, so an httptest
// server answers every query with the same valid vector plus the warnings.
func TestWarningsDemoteAPass(t *testing.T) {
	const partial = "remote read of store-eu-1 failed: results may be incomplete"
	tests := []struct {
		name        string
		canaryDrops int
		warnings    []string
		want        gates.Verdict
		wantReason  []string
	}{
		{name: "no warnings, a pass", want: gates.Pass, wantReason: []string{"canary n2: 0 heartbeat-lane drops"}},
		{
			name: "warnings demote the pass", warnings: []string{partial},
			want: gates.Inconclusive, wantReason: []string{"the answer came with warnings (" + partial + ")", "a pass cannot be trusted"},
		},
		{
			name: "a fail stays a fail, with the warning", canaryDrops: 3, warnings: []string{partial},
			want: gates.Fail, wantReason: []string{"canary n2: 3 heartbeat-lane drops", partial},
		},
	}
	hb, ok := targets.Lanectl().Gates().Lookup("heartbeat_drops")
	if !ok {
		t.Fatal("no heartbeat_drops gate in the default set")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warns := `[]`
			if len(tt.warnings) > 0 {
				warns = fmt.Sprintf(`[%q]`, tt.warnings[0])
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"status":"success","warnings":%s,"data":{"resultType":"vector","result":[`+
					`{"metric":{"node_id":"n1"},"value":[1700000000,"0"]},`+
					`{"metric":{"node_id":"n2"},"value":[1700000000,"%d"]}]}}`, warns, tt.canaryDrops)
			}))
			defer srv.Close()
			q, err := query.NewPrometheus(srv.URL, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			res, err := gates.Evaluate(context.Background(), q, gates.Set{hb}, gates.Request{
				PresenceMetric: targets.LanectlLanesEnabled,
				Canaries:       replicaTargets("n2"),
				Baselines:      replicaTargets("n1"),
				Window:         gates.Window{Start: now.Add(-2 * time.Hour), End: now.Add(-time.Minute)},
				Now:            now,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tt.want || len(res.Gates) != 1 || res.Gates[0].Verdict != tt.want {
				t.Fatalf("verdict: got %s (gates %+v), want %s", res.Verdict, res.Gates, tt.want)
			}
			for _, w := range tt.wantReason {
				if !strings.Contains(res.Gates[0].Reason, w) {
					t.Errorf("gate reason: got %q, want it to contain %q", res.Gates[0].Reason, w)
				}
				// The soak's reason is the worst gate's when it is not a pass.
				if tt.want != gates.Pass && !strings.Contains(res.Reason, w) {
					t.Errorf("soak reason: got %q, want it to contain %q", res.Reason, w)
				}
			}
			if got := strings.Join(res.Gates[0].Warnings, "|"); got != strings.Join(tt.warnings, "|") {
				t.Errorf("warnings: got %q, want %q", res.Gates[0].Warnings, tt.warnings)
			}
		})
	}
}
