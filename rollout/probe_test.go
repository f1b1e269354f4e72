package rollout

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/common/config"
)

// TestProbeErrorsHideThePassword: a replica whose answer breaks off is
// named in the check's detail without the password of its http URL.
func TestProbeErrorsHideThePassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Promise more than is sent, then hang up: the body read fails.
		w.Header().Set("Content-Length", "100")
		_, _ = w.Write([]byte("ok"))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}))
	defer srv.Close()
	r := Replica{Name: "n1", HTTP: strings.Replace(srv.URL, "http://", "http://lanectl:s3cret@", 1), HTTPConfig: config.DefaultHTTPClientConfig}
	p := &Prober{Plan: testPlan(t)}
	defer p.CloseIdleConnections()
	c := p.httpCheck(t.Context(), r, "/healthz")
	if c.OK || strings.Contains(c.Detail, "s3cret") || !strings.Contains(c.Detail, "lanectl:xxxxx@") {
		t.Errorf("check = %+v, want a failed read naming the replica without its password", c)
	}
}
