// Package elastickvtest holds real /metrics scrapes of stock elastickv (at
// upstream commit d9a031d: three nodes n1..n3, three raft groups each,
// redis SET load on group 1) and serves them as replicas' /metrics, so
// tests of the elastickv target read what the real system exports.
//
// Captures (see testdata/README.md):
//
//	legacy-n1 .. legacy-n3                every node on the legacy layout
//	n2-fourlane-n1 .. n2-fourlane-n3      after n2 restarted with the
//	                                      four-lane flag; n3 leads every group
package elastickvtest

import (
	"embed"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

//go:embed testdata/*.prom
var captures embed.FS

// Capture returns the exposition of one capture, e.g. "legacy-n2".
func Capture(name string) ([]byte, error) {
	b, err := captures.ReadFile("testdata/" + name + ".prom")
	if err != nil {
		return nil, fmt.Errorf("elastickv capture %q: %w", name, err)
	}
	return b, nil
}

// Serve starts an HTTP server on 127.0.0.1 whose every path answers with
// the capture, as elastickv's metrics listener does, and stops it when the
// test ends. It returns the server's base URL.
func Serve(t testing.TB, name string) string {
	t.Helper()
	body, err := Capture(name)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
