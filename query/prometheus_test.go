package query_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/internal/testport"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
)

// closedURL is an address nothing listens on: a port reserved for the test
// and never bound.
func closedURL(t *testing.T) string {
	t.Helper()
	return "http://" + testport.For(t).Addr()
}

// TestPrometheusFailures covers answers a real Prometheus cannot be made to
// give (a 500 page, broken JSON, a hung server), served by httptest, plus a
// port nobody listens on.
func TestPrometheusFailures(t *testing.T) {
	// release lets a hung handler go if the client's hang-up never
	// reaches it, so a failure cannot wedge the test.
	release := make(chan struct{})
	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		timeout time.Duration
		want    error
		wantMsg string
	}{
		{name: "unreachable", want: query.ErrUnreachable, wantMsg: "connection refused"},
		{
			name: "500 with an HTML page",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "<html>upstream exploded</html>", http.StatusInternalServerError)
			},
			want: query.ErrBadResponse, wantMsg: "server error: 500",
		},
		{
			name: "malformed JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[{`))
			},
			want: query.ErrBadResponse,
		},
		{
			name: "a matrix where a vector was expected",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
			},
			want: query.ErrBadResponse, wantMsg: "result is a matrix, want an instant vector",
		},
		{
			name: "execution error",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnprocessableEntity)
				_, _ = w.Write([]byte(`{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}`))
			},
			want: query.ErrBadQuery, wantMsg: "many-to-many matching not allowed",
		},
		{
			name: "server slower than the deadline",
			handler: func(w http.ResponseWriter, r *http.Request) {
				// Reading the form lets the server notice the client hanging up.
				_ = r.ParseForm()
				select {
				case <-r.Context().Done():
				case <-release:
				}
			},
			timeout: 300 * time.Millisecond,
			want:    query.ErrTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := closedURL(t)
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				url = srv.URL
				defer srv.Close()
			}
			p, err := query.NewPrometheus(url, config.DefaultHTTPClientConfig)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			_, _, err = p.Query(ctx, "up", time.Now())
			if tt.timeout > 0 {
				close(release)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Query: got error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), url) {
				t.Errorf("Query error: got %q, want it to name %s and contain %q", err, url, tt.wantMsg)
			}
		})
	}
}

// TestPrometheusHTTPConfig checks the http_config block reaches the wire
// and that warnings come back to the caller.
func TestPrometheusHTTPConfig(t *testing.T) {
	var gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","warnings":["results may be incomplete"],"data":{"resultType":"vector","result":[{"metric":{"node_id":"n2"},"value":[1700000000,"3"]}]}}`))
	}))
	defer srv.Close()
	cfg := config.DefaultHTTPClientConfig
	cfg.BearerToken = "s3cret"
	p, err := query.NewPrometheus(srv.URL, cfg)
	if err != nil {
		t.Fatal(err)
	}
	vec, warns, err := p.Query(context.Background(), "x", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if gotAuth != "Bearer s3cret" {
		t.Errorf("Authorization: got %q, want %q", gotAuth, "Bearer s3cret")
	}
	if len(warns) != 1 || warns[0] != "results may be incomplete" {
		t.Errorf("warnings: got %q, want [results may be incomplete]", warns)
	}
	if len(vec) != 1 || vec[0].Labels["node_id"] != "n2" || vec[0].Value != 3 {
		t.Errorf("vector: got %v, want one sample node_id=n2 value 3", vec)
	}
}

func TestNewPrometheusRejectsBadConfig(t *testing.T) {
	bad := config.DefaultHTTPClientConfig
	bad.BearerToken = "a"
	bad.BearerTokenFile = "/b"
	tests := []struct {
		url  string
		cfg  config.HTTPClientConfig
		want string
	}{
		{"prometheus:9090", config.DefaultHTTPClientConfig, "scheme must be http or https"},
		{"http://", config.DefaultHTTPClientConfig, "no host"},
		{"http://127.0.0.1:9090", bad, "http_config"},
	}
	for _, tt := range tests {
		_, err := query.NewPrometheus(tt.url, tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewPrometheus(%q): got error %v, want one containing %q", tt.url, err, tt.want)
		}
	}
}

// TestBadPromQL sends a query that does not parse to a real Prometheus and
// to the embedded engine: both say where.
func TestBadPromQL(t *testing.T) {
	srv := promtest.Start(t, promtest.Options{})
	p, err := query.NewPrometheus(srv.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	const bad = `sum(rate(x[5m])`
	_, _, err = p.Query(context.Background(), bad, time.Now())
	if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), "1:") {
		t.Errorf("Prometheus: got error %v, want ErrBadQuery with a position", err)
	}
	err = query.CheckExpr(bad)
	if !errors.Is(err, query.ErrBadQuery) || !strings.Contains(err.Error(), "1:16: parse error") {
		t.Errorf("CheckExpr: got %v, want ErrBadQuery at 1:16", err)
	}
}
