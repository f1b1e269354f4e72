package query_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
)

// instant runs expr at time at and returns its single value.
func instant(t *testing.T, q *query.Embedded, expr string, at time.Time) float64 {
	t.Helper()
	vec, _, err := q.Query(context.Background(), expr, at)
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	if len(vec) != 1 {
		t.Fatalf("query %s at %s: got %d samples %v, want 1", expr, at.Format(time.RFC3339Nano), len(vec), vec)
	}
	return vec[0].Value
}

// TestEmbeddedDirKeepsHistory opens a store on the same Dir three times.
// The scrape interval is an hour, so each run records exactly the one
// synchronous scrape NewEmbedded makes, at a pinned time, of a counter that
// grows by 10 between runs: every earlier run's sample must still be there,
// with its own value, when the store is reopened.
func TestEmbeddedDirKeepsHistory(t *testing.T) {
	e := newExporter(t, "n2")
	dir := filepath.Join(t.TempDir(), "lanectl-state.json.metrics")
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	at := func(run int) time.Time { return base.Add(time.Duration(run) * 15 * time.Second) }
	const drops = `elastickv_raft_dispatch_dropped_total{lane="replication"}`
	for run := range 3 {
		if run > 0 {
			e.dropped.WithLabelValues("replication", "2").Add(10)
		}
		emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, time.Hour, query.EmbeddedOptions{Dir: dir, Now: func() time.Time { return at(run) }})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for earlier := range run + 1 {
			if got, want := instant(t, emb, drops, at(earlier)), float64(4+10*earlier); got != want {
				t.Errorf("run %d: %s at run %d's scrape: got %v, want %v", run, drops, earlier, got, want)
			}
		}
		if got, want := instant(t, emb, `count_over_time(up[1m])`, at(run)), float64(run+1); got != want {
			t.Errorf("run %d: count_over_time(up[1m]): got %v, want %v (one scrape per run so far)", run, got, want)
		}
		if got := emb.HistoryStart(); !got.Equal(at(0)) {
			t.Errorf("run %d: HistoryStart: got %v, want the first run's scrape %v", run, got, at(0))
		}
		if err := emb.Close(); err != nil {
			t.Fatalf("run %d: close: %v", run, err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("after Close: %v, want the store kept", err)
	}
	if got := fi.Mode().Perm(); got != 0o750 {
		t.Errorf("store dir mode: got %v, want 0750", got)
	}
}

// TestEmbeddedCloseRecordsNoOutage scrapes live, closes and reopens: the
// scrapes Close cuts short must not be stored as a down target, or a soak
// judged later from the same Dir would see an outage at every restart.
func TestEmbeddedCloseRecordsNoOutage(t *testing.T) {
	e := newExporter(t, "n1")
	dir := t.TempDir()
	began := time.Now()
	// A scrape timeout of the 10ms interval could expire under -race: that
	// would be a real down scrape, not the one this test is about.
	client := &http.Client{Timeout: 10 * time.Second}
	for run := range 3 {
		emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, 10*time.Millisecond, query.EmbeddedOptions{Dir: dir, Client: client})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		promtest.Eventually(t, 10*time.Second, "five more scrapes", func() bool {
			return instant(t, emb, `count_over_time(up[1m])`, time.Now()) >= float64(5*(run+1))
		})
		if err := emb.Close(); err != nil {
			t.Fatalf("run %d: close: %v", run, err)
		}
	}
	emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, time.Hour, query.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()
	rng := fmt.Sprintf("[%dms]", time.Since(began).Milliseconds()+1000)
	if got := instant(t, emb, `min_over_time(up`+rng+`)`, time.Now()); got != 1 {
		t.Errorf("min_over_time(up%s) over three runs: got %v, want 1 (no down scrape recorded)", rng, got)
	}
	if got := instant(t, emb, `count_over_time(elastickv_raft_dispatcher_lanes_enabled`+rng+`)`, time.Now()); got < 16 {
		t.Errorf("count_over_time(flag gauge%s): got %v, want >= 16 (every run's scrapes, no stale markers)", rng, got)
	}
}

// TestEmbeddedDirBusy opens a second store on a Dir that an open store
// holds. tsdb's lock is a flock, which conflicts between two opens of the
// lock file even inside one process, so this is the real lock at work.
func TestEmbeddedDirBusy(t *testing.T) {
	e := newExporter(t, "n1")
	dir := filepath.Join(t.TempDir(), "metrics")
	open := func() (*query.Embedded, error) {
		return query.NewEmbedded(context.Background(), []string{e.url()}, time.Second, query.EmbeddedOptions{Dir: dir})
	}
	holder, err := open()
	if err != nil {
		t.Fatal(err)
	}
	second, err := open()
	if !errors.Is(err, query.ErrStoreBusy) {
		if second != nil {
			_ = second.Close()
		}
		t.Fatalf("second open while the first is open: got %v, want ErrStoreBusy", err)
	}
	for _, want := range []string{dir, "another lanectl process", "lanectl soak"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("busy error: got %q, want it to mention %q", err, want)
		}
	}
	if err := holder.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	third, err := open()
	if err != nil {
		t.Fatalf("open after the holder closed: got %v, want the lock released", err)
	}
	if err := third.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestEmbeddedDirStaleLockFile opens a Dir holding the lock file of a run
// that was killed: the file is there but nobody holds its flock, so the
// store opens.
func TestEmbeddedDirStaleLockFile(t *testing.T) {
	e := newExporter(t, "n1")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, time.Second, query.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatalf("open with a stale lock file: got %v, want it to open", err)
	}
	if err := emb.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestEmbeddedCloseRemovesOnlyTempDir checks what Close leaves behind.
func TestEmbeddedCloseRemovesOnlyTempDir(t *testing.T) {
	e := newExporter(t, "n1")
	tests := []struct {
		name     string
		dir      string
		wantKept bool
	}{
		{"temporary", "", false},
		{"with Dir", filepath.Join(t.TempDir(), "a", "b"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			emb, err := query.NewEmbedded(context.Background(), []string{e.url()}, time.Second, query.EmbeddedOptions{Dir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			dir := emb.Dir()
			if tt.dir != "" && dir != tt.dir {
				t.Errorf("Dir: got %q, want %q", dir, tt.dir)
			}
			if _, err := os.Stat(filepath.Join(dir, "wal")); err != nil {
				t.Errorf("while open: %v, want a TSDB in %s", err, dir)
			}
			if err := emb.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			_, err = os.Stat(dir)
			if kept := err == nil; kept != tt.wantKept {
				t.Errorf("after Close: stat %s: %v; got kept %v, want %v", dir, err, kept, tt.wantKept)
			}
		})
	}
}

func TestNewEmbeddedRejectsBadDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	if err := os.WriteFile(file, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts query.EmbeddedOptions
		want string
	}{
		{"dir is a file", query.EmbeddedOptions{Dir: file}, "create metrics store"},
		{"dir under a file", query.EmbeddedOptions{Dir: filepath.Join(file, "metrics")}, "create metrics store"},
		{"negative retention", query.EmbeddedOptions{Dir: t.TempDir(), Retention: -time.Hour}, "must not be negative"},
	}
	for _, tt := range tests {
		emb, err := query.NewEmbedded(context.Background(), []string{"http://127.0.0.1:1/metrics"}, time.Second, tt.opts)
		if err == nil {
			_ = emb.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestStoreViewReadsAStoreInUse reads a store that an open store keeps
// scraping: each query sees what the writer had committed by then, and
// closing the view leaves the writer and its directory as they were.
func TestStoreViewReadsAStoreInUse(t *testing.T) {
	e := newExporter(t, "n1")
	parent := t.TempDir()
	dir := filepath.Join(parent, "metrics")
	writer, err := query.NewEmbedded(context.Background(), []string{e.url()}, 10*time.Millisecond,
		query.EmbeddedOptions{Dir: dir, Client: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()

	view, err := query.OpenStoreReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	count := func() float64 {
		t.Helper()
		vec, _, err := view.Query(context.Background(), `count_over_time(up[1m])`, time.Now())
		if err != nil {
			t.Fatalf("query through the view: %v", err)
		}
		if len(vec) != 1 {
			t.Fatalf("query through the view: got %v, want one series", vec)
		}
		return vec[0].Value
	}
	first := count()
	if first < 1 {
		t.Fatalf("count_over_time(up[1m]) through the view: %v, want the writer's scrapes", first)
	}
	// The writer keeps scraping; a later query sees its newer samples.
	promtest.Eventually(t, 10*time.Second, "the view to see the writer's newer scrapes", func() bool { return count() >= first+5 })

	if err := view.Close(); err != nil {
		t.Fatalf("close view: %v", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "metrics" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("next to the store after Close: %v, want only the store (sandbox removed)", names)
	}
	if got := instant(t, writer, `count_over_time(up[1m])`, time.Now()); got < first+5 {
		t.Errorf("writer after the view closed: count_over_time(up[1m]) = %v, want it still scraping", got)
	}
}

func TestStoreViewRefusesADirThatIsNoStore(t *testing.T) {
	dir := t.TempDir()
	if _, err := query.OpenStoreReadOnly(dir, nil); err == nil || !strings.Contains(err.Error(), "not a metrics store") {
		t.Fatalf("open %s: got %v, want it refused as not a metrics store", dir, err)
	}
}

// TestStoreViewRemovesTheSandboxOfAKilledView kills a process while its view
// is open: its sandbox stays behind next to the store, and the next view
// removes it, but never the sandbox of a view that is still open.
func TestStoreViewRemovesTheSandboxOfAKilledView(t *testing.T) {
	e := newExporter(t, "n1")
	parent := t.TempDir()
	dir := filepath.Join(parent, "metrics")
	writer, err := query.NewEmbedded(context.Background(), []string{e.url()}, 50*time.Millisecond, query.EmbeddedOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	sandboxes := func() []string {
		t.Helper()
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			if e.Name() != "metrics" {
				out = append(out, e.Name())
			}
		}
		return out
	}

	// A view that stays open in this process.
	live, err := query.OpenStoreReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	liveSandbox := sandboxes()

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), viewHelperEnv+"="+dir)
	stdin, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	helper.Stderr = &stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if line != "open\n" {
		_ = helper.Process.Kill()
		_ = helper.Wait()
		t.Fatalf("helper process: got %q on stdout, want \"open\"; stderr:\n%s", line, stderr.String())
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = helper.Wait()
	if got := sandboxes(); len(got) != 2 {
		t.Fatalf("next to the store after the kill: %v, want the live view's sandbox and the killed one's", got)
	}

	next, err := query.OpenStoreReadOnly(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := sandboxes(); len(got) != 2 || !slices.Contains(got, liveSandbox[0]) {
		t.Errorf("next to the store with two views open: %v, want the live view's sandbox %s and the new one's", got, liveSandbox[0])
	}
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	if got := sandboxes(); !slices.Equal(got, liveSandbox) {
		t.Errorf("next to the store after the new view closed: %v, want only the live view's sandbox %v", got, liveSandbox)
	}
	if _, _, err := live.Query(context.Background(), "up", time.Now()); err != nil {
		t.Errorf("the live view after another view swept: %v", err)
	}
}
