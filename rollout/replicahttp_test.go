package rollout

import (
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Replica endpoints are reached with the plan's HTTP client config: a
// bearer token from a file and a CA for the replicas' TLS certificate
// (httptest's, made for this test). Without the token, the scrape is
// refused and nothing verifies.
func TestProberReplicaHTTPConfig(t *testing.T) {
	const token = "metrics-token"
	body := capture(t, "legacy-n1")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write(body)
	}))
	// The refused handshake of the "no CA" case is the point, not noise.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string][]byte{"ca.pem": ca, "token": []byte(token + "\n")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	load := func(httpCfg string) *Plan {
		t.Helper()
		plan := fmt.Sprintf(`target: elastickv
prometheus: {url: http://127.0.0.1:1}
replica_http:
%s
replicas:
  - {name: n1, stage: s, ssh: 127.0.0.1, http: %q}
stages: [{name: s}]
commands: {read: 'printf ""'}
`, httpCfg, srv.URL)
		path := filepath.Join(dir, "lanectl.yaml")
		if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := LoadPlan(path)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, httpCfg string
		ok            bool
		why           string
	}{
		{"token and CA", "  authorization: {credentials_file: token}\n  tls_config: {ca_file: ca.pem}", true, ""},
		{"no token", "  tls_config: {ca_file: ca.pem}", false, "GET /metrics: GET " + srv.URL + "/metrics: 401 Unauthorized"},
		{"no CA", "  authorization: {credentials_file: token}", false, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := load(tt.httpCfg)
			pr := &Prober{Plan: p, Runner: LocalRunner{Timeout: 5 * time.Second}}
			defer pr.CloseIdleConnections()
			ok, why := pr.Probe(t.Context(), p.Replicas[0], time.Now()).Check(false)
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("Check = %v, %q; want %v and %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}
