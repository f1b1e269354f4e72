// Package alertmanagertest starts a real Alertmanager for a test: the
// /usr/bin/prometheus-alertmanager binary (Debian package
// prometheus-alertmanager), on a reserved 127.0.0.1 port, with clustering
// off, its own storage directory and a generated configuration whose route
// sends every alert matching alertname=~"lanectl_.*" to a webhook receiver
// the test runs (see Receiver), resolved notifications included. The test
// reads alerts back through the v2 API (Alerts), as an operator's tooling
// would.
//
// It is a test helper: it calls t.Fatal on failure, never skips when the
// binary is missing, and the server is stopped by t.Cleanup. It must never
// be imported by non-test code.
package alertmanagertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanectl/lanectl/internal/testserver"
)

// Bin is the Alertmanager binary as the Debian package installs it.
const Bin = "/usr/bin/prometheus-alertmanager"

// Options say where the server routes lanectl's alerts.
type Options struct {
	// Webhook is the URL the lanectl route's receiver posts to; empty
	// routes the alerts to a receiver that sends nothing.
	Webhook string
}

// Server is a running Alertmanager.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Dir holds alertmanager.yml, the storage directory and the log.
	Dir string
}

// Config is the configuration Start writes: a catch-all route to a
// receiver that sends nothing, and the route of the README's notify
// section, with short group timings so a test sees notifications quickly.
func Config(webhook string) string {
	lanectl := "  - name: lanectl\n"
	if webhook != "" {
		lanectl += fmt.Sprintf("    webhook_configs:\n      - url: %s\n        send_resolved: true\n", strconv.Quote(webhook))
	}
	return `route:
  receiver: default
  routes:
    - matchers: ['alertname=~"lanectl_.*"']
      receiver: lanectl
      group_by: [plan, alertname]
      group_wait: 100ms
      group_interval: 1s
      repeat_interval: 1h
receivers:
  - name: default
` + lanectl
}

// Start runs an Alertmanager for t and waits until it is ready.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(Config(opts.Webhook)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := testserver.Launch(testserver.Spec{
		Name: "alertmanager", Bin: Bin, Package: "prometheus-alertmanager", Dir: dir,
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfg,
				"--storage.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + addr,
				// No gossip: nothing but the reserved port is bound.
				"--cluster.listen-address=",
				"--log.level=warn",
			}
		},
		ReadyPath: "/-/ready", ReadyTimeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatalf("alertmanagertest: %v", err)
	}
	t.Cleanup(p.Stop)
	return &Server{URL: p.URL, Dir: dir}
}

// Alert is an alert as GET /api/v2/alerts returns it.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// Alerts returns the alerts the server holds that match every filter
// (Alertmanager matchers such as `plan="p"`). Resolved alerts are not
// among them: Alertmanager's API leaves out alerts whose endsAt passed.
func (s *Server) Alerts(ctx context.Context, filters ...string) ([]Alert, error) {
	u := s.URL + "/api/v2/alerts"
	if len(filters) > 0 {
		u += "?" + url.Values{"filter": filters}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	var out []Alert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return out, nil
}

// Notification is one webhook notification Alertmanager sent: the group's
// status and its alerts, each firing or resolved.
type Notification struct {
	Status string `json:"status"`
	Alerts []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// Receiver is an HTTP server that records what Alertmanager's webhook
// receiver posts to it.
type Receiver struct {
	URL string
	mu  sync.Mutex
	got []Notification
}

// StartReceiver starts a Receiver for t; pass its URL as Options.Webhook.
func StartReceiver(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var n Notification
		if err := json.NewDecoder(req.Body).Decode(&n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.got = append(r.got, n)
		r.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// Seen reports whether Alertmanager has notified an alert with label
// alertname=name and the given status (firing or resolved), and every
// label in labels.
func (r *Receiver) Seen(name, status string, labels map[string]string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.got {
		for _, a := range n.Alerts {
			if a.Status != status || a.Labels["alertname"] != name {
				continue
			}
			match := true
			for k, v := range labels {
				match = match && a.Labels[k] == v
			}
			if match {
				return true
			}
		}
	}
	return false
}
