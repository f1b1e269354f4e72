package rollout

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/targets/elastickvtest"
)

// serveExposition serves body on every path, as elastickv's metrics
// listener does.
func serveExposition(t *testing.T, body []byte) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func capture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := elastickvtest.Capture(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// elastickvPlan writes and loads a plan of the elastickv target whose
// replicas n1..n3 are served at urls. The read command prints nothing
// (the flag unset), run by a local shell.
func elastickvPlan(t *testing.T, urls []string) *Plan {
	t.Helper()
	var b strings.Builder
	b.WriteString("target: elastickv\nprometheus: {url: http://127.0.0.1:1}\n")
	b.WriteString("stages: [{name: canary}, {name: fleet}]\nreplicas:\n")
	for i, u := range urls {
		stage := "fleet"
		if i == 1 {
			stage = "canary"
		}
		fmt.Fprintf(&b, "  - {name: n%d, stage: %s, ssh: 127.0.0.1, http: %q}\n", i+1, stage, u)
	}
	b.WriteString("commands:\n  enable: 'true'\n  disable: 'true'\n  read: 'printf \"\"'\n")
	path := filepath.Join(t.TempDir(), "lanectl.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPlan(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The elastickv target's default verification, over real scrapes of stock
// elastickv (targets/elastickvtest), some edited to show what a sick
// replica exports: each condition passes on the healthy cluster and fails,
// naming itself, on the replica that breaks it.
func TestElastickvVerifyOnCaptures(t *testing.T) {
	swap := func(body []byte, from, to string) []byte {
		t.Helper()
		if !strings.Contains(string(body), from) {
			t.Fatalf("capture lacks %q", from)
		}
		return []byte(strings.Replace(string(body), from, to, 1))
	}
	n2 := capture(t, "legacy-n2")
	// n2's group 2 is campaigning: candidate, not follower.
	candidate := swap(swap(n2,
		`elastickv_raft_local_state{group="2",node_address="127.0.0.1:52021",node_id="n2",state="candidate"} 0`,
		`elastickv_raft_local_state{group="2",node_address="127.0.0.1:52021",node_id="n2",state="candidate"} 1`),
		`elastickv_raft_local_state{group="2",node_address="127.0.0.1:52021",node_id="n2",state="follower"} 1`,
		`elastickv_raft_local_state{group="2",node_address="127.0.0.1:52021",node_id="n2",state="follower"} 0`)
	// n2's group 3 has lost its leader.
	leaderless := swap(n2,
		`elastickv_raft_leader_identity{group="3",leader_address="127.0.0.1:52033",leader_id="n3",node_address="127.0.0.1:52021",node_id="n2"} 1`,
		`elastickv_raft_leader_identity{group="3",leader_address="127.0.0.1:52033",leader_id="n3",node_address="127.0.0.1:52021",node_id="n2"} 0`)
	tests := []struct {
		name string
		// bodies of n1, n2, n3
		bodies [3][]byte
		// wantBad maps a replica to the text its failed check must show;
		// the others must pass.
		wantBad map[string]string
	}{
		{"legacy cluster", [3][]byte{capture(t, "legacy-n1"), n2, capture(t, "legacy-n3")}, nil},
		{"after n2 restarted four-lane", [3][]byte{capture(t, "n2-fourlane-n1"), capture(t, "n2-fourlane-n2"), capture(t, "n2-fourlane-n3")}, nil},
		// Real scrapes from two moments: n1 and n3 as they were before,
		// n2 some 1500 entries later. n1 and n3 are behind the highest
		// commit index n2 reports.
		{"n1 and n3 behind n2", [3][]byte{capture(t, "legacy-n1"), capture(t, "n2-fourlane-n2"), capture(t, "legacy-n3")},
			map[string]string{"n1": "elastickv_raft_applied_index", "n3": "elastickv_raft_applied_index"}},
		{"n2 candidate in group 2", [3][]byte{capture(t, "legacy-n1"), candidate, capture(t, "legacy-n3")},
			map[string]string{"n2": `state=~"leader|follower"`}},
		{"n2 without a leader in group 3", [3][]byte{capture(t, "legacy-n1"), leaderless, capture(t, "legacy-n3")},
			map[string]string{"n2": "elastickv_raft_leader_identity"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var urls []string
			for _, b := range tt.bodies {
				urls = append(urls, serveExposition(t, b))
			}
			p := elastickvPlan(t, urls)
			pr := &Prober{Plan: p, Runner: LocalRunner{Timeout: 5 * time.Second}}
			defer pr.CloseIdleConnections()
			probes := pr.probeAll(t.Context(), p.Replicas, time.Now())
			for _, r := range p.Replicas {
				ok, why := probes[r.Name].Check(false)
				want, bad := tt.wantBad[r.Name]
				switch {
				case bad && (ok || !strings.Contains(why, want)):
					t.Errorf("%s: Check = %v, %q; want a failed check naming %s", r.Name, ok, why, want)
				case !bad && !ok:
					t.Errorf("%s: Check = %v, %q; want it to pass", r.Name, ok, why)
				}
				if !bad && probes[r.Name].Report != nil {
					t.Errorf("%s: read a status document from an elastickv listener", r.Name)
				}
			}
		})
	}
}
