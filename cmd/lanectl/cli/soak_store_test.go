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
// live soak runs, another soak on the plan is refused with exit 3, and
// status reads what the live soak has stored so far.
func TestSoakPlanStoreKeepsHistory(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	// Cleanups run last-registered first: this one runs after the
	// exporters are closed.
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	n1, n2, n3 := newReplicaExporter(t, "n1", false), newReplicaExporter(t, "n2", true), newReplicaExporter(t, "n3", false)
	targets := []string{n1.srv.URL + "/metrics", n2.srv.URL + "/metrics", n3.srv.URL + "/metrics"}
	// A drop counter per replica, at zero, for status to find in the store.
	n1.dropped.WithLabelValues("normal", "2")
	n2.dropped.WithLabelValues("replication", "1")
	n3.dropped.WithLabelValues("normal", "2")
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

	// The live soak holds the store: wait for tsdb's lock file.
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(filepath.Join(store, "lock")); err != nil; _, err = os.Stat(filepath.Join(store, "lock")) {
		if time.Now().After(deadline) {
			t.Fatalf("live soak: no lock file in %s after 10s: %v", store, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, _, err := runLanectl(ctx, "soak", "--config", plan, "--canary", "n2", "--window", "3s"); !errors.Is(err, query.ErrStoreBusy) || ExitCode(err) != ExitOperational {
		t.Errorf("soak during a live soak: got %v (exit %d), want ErrStoreBusy (exit 3)", err, ExitCode(err))
	} else if !strings.Contains(err.Error(), store) || !strings.Contains(err.Error(), "lanectl soak") {
		t.Errorf("soak during a live soak: got %q, want it to name %s and the live soak", err, store)
	}
	// status reads the store while the live soak writes it. The lock file
	// appears before the live soak's first scrape is stored, so poll.
	type statusDoc struct {
		Replicas []struct {
			Name     string
			Drops    map[string]float64
			DropsErr string `json:"drops_error"`
		}
	}
	var st statusDoc
	var errOut string
	deadline = time.Now().Add(10 * time.Second)
	for {
		var out string
		var err error
		out, errOut, err = runLanectl(ctx, "status", "--config", plan, "-o", "json")
		if err != nil {
			t.Fatalf("status during a live soak: %v\nstderr: %s", err, errOut)
		}
		st = statusDoc{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json: %v\n%s", err, out)
		}
		// Each replica's drop counter is known only to the store.
		read := len(st.Replicas) == 3
		for _, r := range st.Replicas {
			read = read && len(r.Drops) == 1 && r.DropsErr == ""
		}
		if read {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status during a live soak: replicas %+v after 10s, want each one's drops read from the store", st.Replicas)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(errOut, "reading what it has stored so far") || !strings.Contains(errOut, store) {
		t.Errorf("status during a live soak: stderr %q, want a note that it reads %s as stored so far", errOut, store)
	}
	if matches, _ := filepath.Glob(store + ".read-*"); len(matches) != 0 {
		t.Errorf("status left its read sandbox behind: %v", matches)
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
		{"plan store: decided from the live soak's history", []string{"soak", "--config", plan, "--canary", "n2"}, ExitOK, "verdict: pass: all 9 gates pass over 3s"},
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
