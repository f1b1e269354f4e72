package query_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/query"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://prometheus:9090", "http://prometheus:9090"},
		{"http://admin:s3cret@prometheus:9090/prom", "http://admin:xxxxx@prometheus:9090/prom"},
		{"https://admin@prometheus", "https://admin@prometheus"},
		// Does not parse (bad port, bad escape): all user info goes.
		{"http://admin:s3cret@prometheus:90x0", "http://xxxxx@prometheus:90x0"},
		{"http://admin:s3%zzret@prometheus/a@b", "http://xxxxx@prometheus/a@b"},
		// No scheme: url.Parse reads "admin" as one and hides the rest.
		{"admin:s3cret@prometheus:9090", "xxxxx@prometheus:9090"},
		{"http://prometheus/path@x", "http://prometheus/path@x"},
	}
	for _, tt := range tests {
		if got := query.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestErrorsHideThePassword: no error of the Prometheus querier repeats the
// password of its URL, whether the server is unreachable, answers 500,
// never answers, sends too much, or the URL does not parse.
func TestErrorsHideThePassword(t *testing.T) {
	const password = "s3cret"
	withPassword := func(u string) string { return strings.Replace(u, "http://", "http://admin:"+password+"@", 1) }
	tests := []struct {
		name    string
		handler http.HandlerFunc // nil: nothing listens
		opts    []query.PrometheusOption
	}{
		{name: "unreachable"},
		{name: "500 answer", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream exploded", http.StatusInternalServerError)
		}},
		{name: "no answer in time", opts: []query.PrometheusOption{query.WithQueryTimeout(200 * time.Millisecond)},
			handler: func(w http.ResponseWriter, r *http.Request) {
				// Reading the form lets the server notice the client hanging up.
				_ = r.ParseForm()
				<-r.Context().Done()
			}},
		{name: "answer too large", opts: []query.PrometheusOption{query.WithMaxAnswerBytes(16)},
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := closedURL(t)
			if tt.handler != nil {
				srv := httptest.NewServer(tt.handler)
				defer srv.Close()
				u = srv.URL
			}
			p, err := query.NewPrometheus(withPassword(u), config.DefaultHTTPClientConfig, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(p.URL(), password) {
				t.Errorf("URL(): got %q, want the password redacted", p.URL())
			}
			_, _, err = p.Query(context.Background(), "up", time.Now())
			if err == nil {
				t.Fatal("Query: got no error")
			}
			if strings.Contains(err.Error(), password) || !strings.Contains(err.Error(), "admin:xxxxx@") {
				t.Errorf("Query error: got %q, want it to name the server as admin:xxxxx@, without the password", err)
			}
		})
	}
	for _, bad := range []string{"http://admin:s3cret@prometheus:90x0", "ftp://admin:s3cret@prometheus", "http://admin:s3cret@"} {
		_, err := query.NewPrometheus(bad, config.DefaultHTTPClientConfig)
		if err == nil || strings.Contains(err.Error(), password) {
			t.Errorf("NewPrometheus(%q): got error %v, want one without the password", bad, err)
		}
	}
}

// TestEmbeddedErrorsHideThePassword: the embedded store's errors about its
// targets do not repeat their passwords either.
func TestEmbeddedErrorsHideThePassword(t *testing.T) {
	for _, targets := range [][]string{
		{"ftp://admin:s3cret@10.0.0.1:9101/metrics"},
		{"http://admin:s3cret@10.0.0.1:9101/metrics", "http://admin:s3cret@10.0.0.1:9101/metrics"},
	} {
		_, err := query.NewEmbedded(context.Background(), targets, time.Second, query.EmbeddedOptions{})
		if err == nil || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("NewEmbedded(%d targets): got error %v, want one without the password", len(targets), err)
		}
	}
}
