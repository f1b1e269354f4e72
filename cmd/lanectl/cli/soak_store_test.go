package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/lanectl/lanectl/query"
)

// runLanectl runs 'lanectl args...' in-process with its own streams.
func runLanectl(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	streams := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdRoot(streams, func(string) string { return "" })
	root.SetArgs(args)
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestSoakPlanStoreKeepsHistory is the operator's workflow with a plan
// that lists targets and no Prometheus: a live 'lanectl soak --config'
// watches the window; a later run over the same window, after it is over,
// is decided from what the first one recorded in <state>.metrics. While the
// live soak runs, other runs on the plan are refused with exit 3.
func TestSoakPlanStoreKeepsHistory(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// Cleanups run last-registered first: this one runs after the
	// exporters are closed.
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	n1, n2, n3 := newReplicaExporter(t, "n1", false), newReplicaExporter(t, "n2", true), newReplicaExporter(t, "n3", false)
	targets := []string{n1.srv.URL + "/metrics", n2.srv.URL + "/metrics", n3.srv.URL + "/metrics"}
	dir := t.TempDir()
	plan := filepath.Join(dir, "lanectl.yaml")
	var replicas strings.Builder
	for i, e := range []*replicaExporter{n1, n2, n3} {
		fmt.Fprintf(&replicas, "  - {name: n%d, stage: all, ssh: 127.0.0.1, http: %q}\n", i+1, e.srv.URL)
	}
	yaml := fmt.Sprintf("prometheus:\n  targets: [%s]\nreplicas:\n%sstages: [{name: all}]\n", strings.Join(targets, ", "), replicas.String())
	if err := os.WriteFile(plan, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "lanectl-state.json.metrics")
	ctx := context.Background()

	type soakDoc struct {
		Verdict string `json:"verdict"`
		Window  struct {
			Start time.Time `json:"start"`
		} `json:"window"`
		Source string `json:"source"`
	}
	type result struct {
		out, errOut string
		err         error
	}
	live := make(chan result, 1)
	go func() {
		out, errOut, err := runLanectl(ctx, "soak", "--config", plan, "--canary", "n2", "--window", "3s", "--interval", "500ms", "-o", "json")
		live <- result{out, errOut, err}
	}()

	// The live soak holds the store: wait for tsdb's lock file, then every
	// other run on the plan is refused.
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(filepath.Join(store, "lock")); err != nil; _, err = os.Stat(filepath.Join(store, "lock")) {
		if time.Now().After(deadline) {
			t.Fatalf("live soak: no lock file in %s after 10s: %v", store, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"soak", "--config", plan, "--canary", "n2", "--window", "3s"},
		{"status", "--config", plan},
	} {
		_, _, err := runLanectl(ctx, args...)
		if !errors.Is(err, query.ErrStoreBusy) || ExitCode(err) != ExitOperational {
			t.Errorf("%s during a live soak: got %v (exit %d), want ErrStoreBusy (exit 3)", args[0], err, ExitCode(err))
			continue
		}
		if !strings.Contains(err.Error(), store) || !strings.Contains(err.Error(), "lanectl soak") {
			t.Errorf("%s during a live soak: got %q, want it to name %s and the live soak", args[0], err, store)
		}
	}

	first := <-live
	if first.err != nil {
		t.Fatalf("live soak: got %v, want a pass\nstdout:\n%s\nstderr:\n%s", first.err, first.out, first.errOut)
	}
	var doc soakDoc
	if err := json.Unmarshal([]byte(first.out), &doc); err != nil {
		t.Fatalf("live soak: stdout is not JSON: %v\n%s", err, first.out)
	}
	if !strings.HasSuffix(doc.Source, " into "+store) {
		t.Errorf("live soak source: got %q, want the store %s named", doc.Source, store)
	}
	start := doc.Window.Start.Format(time.RFC3339Nano)

	tests := []struct {
		name     string
		args     []string
		wantExit int
		want     string
	}{
		{"plan store: decided from the live soak's history", []string{"soak", "--config", plan, "--canary", "n2"}, ExitOK, "verdict: pass: all 8 gates pass over 3s"},
		// The control: the same window through a temporary store, which
		// only knows what it scraped since it started.
		{"no plan: temporary store has no history", []string{"soak", "--targets", strings.Join(targets, ","), "--canary", "n2"}, ExitInconclusive, "verdict: inconclusive: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := runLanectl(ctx, append(tt.args, "--start", start, "--window", "3s", "--interval", "500ms")...)
			if got := ExitCode(err); got != tt.wantExit {
				t.Fatalf("got exit %d (%v), want %d\nstdout:\n%s\nstderr:\n%s", got, err, tt.wantExit, out, errOut)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("stdout: got\n%s\nwant %q", out, tt.want)
			}
		})
	}
}
