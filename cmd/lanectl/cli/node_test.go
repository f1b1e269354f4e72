package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/node/replica/status"
)

// lockedBuffer is written by the replica's logger while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestNodeRunServesAndStopsOnCancel(t *testing.T) {
	var errOut lockedBuffer
	streams := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut}
	env := map[string]string{"ELASTICKV_RAFT_DISPATCHER_LANES": " true ", "ELASTICKV_FSM_SYNC_MODE": "fast"}
	root := NewCmdRoot(streams, func(k string) string { return env[k] })
	root.SetArgs([]string{"node", "run", "--id", "n7", "--peers", "n7=127.0.0.1:0", "--http", "127.0.0.1:0",
		"--data", filepath.Join(t.TempDir(), "n7"), "--tick", "20ms", "--groups", "3"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	httpAddr := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		if m := httpAddr.FindStringSubmatch(errOut.String()); m != nil {
			base = "http://" + m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if base == "" {
		cancel()
		t.Fatalf("no 'replica running' log line; stderr:\n%s", errOut.String())
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	var st status.Replica
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && leadsAll(st) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.ID != "n7" || !leadsAll(st) || len(st.Groups) != 3 || !st.LanesEnabled || st.SyncMode != "sync" {
		t.Errorf("got status %+v, want n7 leading its 3 groups with lanes enabled and sync mode", st)
	}
	if !strings.Contains(errOut.String(), `ELASTICKV_FSM_SYNC_MODE=\"fast\" is not sync or nosync`) {
		t.Errorf("stderr lacks the sync mode warning:\n%s", errOut.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("node run after cancel: got %v, want a clean exit", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("node run did not stop within 10s of cancel")
	}
	if !strings.Contains(errOut.String(), "replica stopped") {
		t.Errorf("stderr lacks the shutdown line:\n%s", errOut.String())
	}
}

func leadsAll(st status.Replica) bool {
	for _, g := range st.Groups {
		if g.Role != "leader" {
			return false
		}
	}
	return len(st.Groups) > 0
}

func TestNodeRunRefusesBadGroupCount(t *testing.T) {
	for _, n := range []string{"0", "-2", "257"} {
		streams := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard}
		root := NewCmdRoot(streams, func(string) string { return "" })
		root.SetArgs([]string{"node", "run", "--id", "n1", "--peers", "n1=127.0.0.1:0", "--http", "127.0.0.1:0",
			"--data", t.TempDir(), "--groups", n})
		err := root.ExecuteContext(t.Context())
		if err == nil || !strings.Contains(err.Error(), "--groups "+n+": want 1 to 256") {
			t.Errorf("--groups %s: got %v, want a usage error naming the flag", n, err)
		}
	}
}

func TestLoadAgainstCluster(t *testing.T) {
	c := nodetest.StartCluster(t, 3, nodetest.Options{Env: []nodetest.Env{nodetest.FourLane(), nodetest.FourLane(), nodetest.Legacy()}})
	c.WaitLeader(15 * time.Second)
	targets := strings.Join(c.URLs(), ",")

	stdout, stderr, code := runRoot(t, "load", "--targets", targets, "--rate", "100", "--duration", "1200ms",
		"--snapshot-every", "400ms", "--progress", "500ms", "-o", "json")
	if code != ExitOK {
		t.Fatalf("got exit %d, stderr %s", code, stderr)
	}
	var res struct {
		WritesOK        int64   `json:"writes_ok"`
		WritesFailed    int64   `json:"writes_failed"`
		P50             float64 `json:"p50_seconds"`
		P99             float64 `json:"p99_seconds"`
		SnapshotsForced int64   `json:"snapshots_forced"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if res.WritesOK < 50 || res.WritesFailed != 0 || res.SnapshotsForced < 1 || res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("got %+v, want >= 50 writes ok, none failed, a snapshot forced and 0 < p50 <= p99", res)
	}
	if !strings.Contains(stderr, "writes ok") {
		t.Errorf("stderr lacks progress lines: %q", stderr)
	}

	stdout, _, code = runRoot(t, "load", "--targets", targets, "--rate", "50", "--duration", "300ms")
	if code != ExitOK {
		t.Fatalf("table run: got exit %d", code)
	}
	for _, row := range []string{"writes ok", "writes failed", "p50 latency", "p99 latency", "snapshots forced"} {
		if !regexp.MustCompile(`\| ` + row + ` +\|`).MatchString(stdout) {
			t.Errorf("table lacks row %q:\n%s", row, stdout)
		}
	}
}

func TestLoadFailsWhenNoWriteSucceeds(t *testing.T) {
	_, stderr, code := runRoot(t, "load", "--targets", "http://127.0.0.1:1", "--rate", "20", "--duration", "200ms", "-o", "json")
	if code != ExitOperational || !strings.Contains(stderr, "writes failed") {
		t.Errorf("got exit %d stderr %q, want %d and 'writes failed'", code, stderr, ExitOperational)
	}
}
