package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/internal/testport"
	"github.com/lanectl/lanectl/query"
)

// hangingPrometheus accepts every query and never answers it, as no real
// Prometheus can be made to do; the URL it returns carries a password.
func hangingPrometheus(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return strings.Replace(srv.URL, "http://", "http://admin:s3cret@", 1)
}

// TestStatusQueryTimeout: status against a Prometheus that never answers
// ends at the plan's query_timeout, with exit 3 and without the URL's
// password. advance builds its querier the same way (newDriver).
func TestStatusQueryTimeout(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "lanectl.yaml")
	body := "prometheus: {url: \"" + hangingPrometheus(t) + "\", query_timeout: 1s}\n" +
		"replicas:\n  - {name: n1, stage: all, ssh: \"root@127.0.0.1:1\", http: \"http://127.0.0.1:1\"}\n" +
		"stages: [{name: all}]\n"
	if err := os.WriteFile(plan, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	streams := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdRoot(streams, func(string) string { return "" })
	root.SetArgs([]string{"status", "--config", plan})
	err := root.ExecuteContext(context.Background())
	if !errors.Is(err, query.ErrTimeout) || ExitCode(err) != ExitOperational {
		t.Fatalf("status: got error %v (exit %d), want a query timeout, exit %d", err, ExitCode(err), ExitOperational)
	}
	if want := "no answer within the 1s query timeout"; !strings.Contains(err.Error(), want) {
		t.Errorf("status error: got %q, want it to say %q", err, want)
	}
	for _, s := range []string{err.Error(), out.String(), errOut.String()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("output holds the password:\n%s", s)
		}
	}
}

// TestSoakHidesThePassword: soak's messages about a --prometheus URL with
// a password, unreachable or answering 500, do not repeat the password.
func TestSoakHidesThePassword(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusInternalServerError)
	}))
	defer srv.Close()
	for name, u := range map[string]string{
		"unreachable": "http://" + testport.For(t).Addr(),
		"500 answer":  srv.URL,
	} {
		t.Run(name, func(t *testing.T) {
			u := strings.Replace(u, "http://", "http://admin:s3cret@", 1)
			stdout, stderr, err := runSoakCmd(context.Background(), "--canary", "n2", "--window", "1h", "--prometheus", u)
			if err == nil {
				t.Fatal("soak: got no error")
			}
			for _, s := range []string{err.Error(), stdout, stderr} {
				if strings.Contains(s, "s3cret") {
					t.Errorf("output holds the password:\n%s", s)
				}
			}
			if !strings.Contains(err.Error(), "admin:xxxxx@") {
				t.Errorf("soak error: got %q, want it to name the server as admin:xxxxx@", err)
			}
		})
	}
}
