package query

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// One scrape of several endpoints answers a query across all of them, and
// an endpoint that cannot be scraped is named and recorded as down.
func TestScrapeOnce(t *testing.T) {
	serve := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	a := serve("# TYPE idx gauge\nidx{node_id=\"a\"} 10\n")
	b := serve("# TYPE idx gauge\nidx{node_id=\"b\"} 30\n")
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	s, err := ScrapeOnce(t.Context(), []Endpoint{{URL: a + "/metrics"}, {URL: b + "/metrics"}, {URL: down.URL + "/metrics"}}, time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	}()
	vec, _, err := s.QueryNow(t.Context(), `max(idx) - on () idx{node_id="a"}`)
	if err != nil || len(vec) != 1 || vec[0].Value != 20 {
		t.Errorf("max over both minus a: got %v, %v; want 20", vec, err)
	}
	if _, ok := s.Errs[down.URL+"/metrics"]; !ok || len(s.Errs) != 1 {
		t.Errorf("Errs = %v, want exactly the closed endpoint", s.Errs)
	}
	vec, _, err = s.QueryNow(t.Context(), `sum(up)`)
	if err != nil || len(vec) != 1 || vec[0].Value != 2 {
		t.Errorf("sum(up): got %v, %v; want 2 of 3 up", vec, err)
	}
}
