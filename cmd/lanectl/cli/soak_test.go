package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lanectl/lanectl/targets"
)

// replicaExporter serves a client_golang registry shaped like a replica's
// /metrics over real HTTP; its counters grow with wall time, and
// heartbeat-lane drops can be added while a soak watches.
type replicaExporter struct {
	srv     *httptest.Server
	dropped *prometheus.CounterVec
}

func newReplicaExporter(t *testing.T, node string, flagOn bool) *replicaExporter {
	t.Helper()
	born := time.Now()
	reg := prometheus.NewRegistry()
	w := prometheus.WrapRegistererWith(prometheus.Labels{"node_id": node}, reg)
	e := &replicaExporter{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "elastickv_raft_dispatch_dropped_total", Help: "h"}, []string{"lane", "peer"})}
	enabled := prometheus.NewGauge(prometheus.GaugeOpts{Name: "elastickv_raft_dispatcher_lanes_enabled", Help: "h"})
	lane := "normal"
	if flagOn {
		enabled.Set(1)
		lane = "replication"
	}
	sync := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "elastickv_fsm_apply_sync_mode", Help: "h"}, []string{"mode"})
	sync.WithLabelValues("sync").Set(1)
	sync.WithLabelValues("nosync").Set(0)
	leader := prometheus.NewCounter(prometheus.CounterOpts{Name: "elastickv_raft_leader_changes_seen_total", Help: "h"})
	leader.Add(1)
	contact := prometheus.NewGauge(prometheus.GaugeOpts{Name: "elastickv_raft_last_contact_seconds", Help: "h"})
	contact.Set(0.05)
	sent := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "elastickv_raft_dispatch_sent_total", Help: "h", ConstLabels: prometheus.Labels{"lane": lane, "peer": "x"}},
		func() float64 { return 1000 * time.Since(born).Seconds() })
	started := prometheus.NewGauge(prometheus.GaugeOpts{Name: targets.LanectlProcessStartTime, Help: "h"})
	started.Set(float64(born.UnixMilli()) / 1000)
	w.MustRegister(e.dropped, enabled, sync, leader, contact, sent, started)
	e.srv = httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(e.srv.Close)
	return e
}

// runSoakCmd runs 'lanectl soak args...' in-process with its own streams.
func runSoakCmd(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	streams := &IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}
	root := NewCmdRoot(streams, func(string) string { return "" })
	root.SetArgs(append([]string{"soak"}, args...))
	err = root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// TestSoakLive watches soaks whose window is not over, with the embedded
// store scraping three replica exporters.
func TestSoakLive(t *testing.T) {
	n1, n2, n3 := newReplicaExporter(t, "n1", false), newReplicaExporter(t, "n2", true), newReplicaExporter(t, "n3", false)
	targets := n1.srv.URL + "/metrics," + n2.srv.URL + "/metrics," + n3.srv.URL + "/metrics"
	stamped := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \S+ of 3s`)

	t.Run("passes when the window is over", func(t *testing.T) {
		out, errOut, err := runSoakCmd(context.Background(), "--canary", "n2", "--window", "3s", "--interval", "500ms", "--targets", targets)
		if err != nil {
			t.Fatalf("soak: got error %v, want a pass\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		}
		if !strings.Contains(out, "verdict: pass: all 9 gates pass over 3s") {
			t.Errorf("stdout: got\n%s\nwant the pass verdict", out)
		}
		if got := len(stamped.FindAllString(errOut, -1)); got < 2 {
			t.Errorf("stderr: got %d timestamped progress lines, want several:\n%s", got, errOut)
		}
		if !strings.Contains(errOut, "soak of n2 from ") {
			t.Errorf("stderr: got\n%s\nwant the soak announced", errOut)
		}
	})

	t.Run("fails fast on a heartbeat drop", func(t *testing.T) {
		drop := time.AfterFunc(time.Second, func() { n2.dropped.WithLabelValues("heartbeat", "n1").Add(3) })
		defer drop.Stop()
		began := time.Now()
		out, errOut, err := runSoakCmd(context.Background(), "--canary", "n2", "--hours", "1", "--interval", "300ms", "--targets", targets, "-o", "json")
		if !errors.Is(err, ErrFailed) || ExitCode(err) != ExitFailed {
			t.Fatalf("soak: got error %v (exit %d), want a failure (exit 1)\nstdout:\n%s\nstderr:\n%s", err, ExitCode(err), out, errOut)
		}
		if !strings.Contains(err.Error(), "heartbeat_drops: canary n2: 3 heartbeat-lane drops in") {
			t.Errorf("error: got %q, want the heartbeat gate's reason", err)
		}
		if d := time.Since(began); d > time.Minute {
			t.Errorf("soak took %v, want it to stop at the first failing evaluation", d)
		}
		if !strings.Contains(out, `"verdict": "fail"`) || !strings.Contains(out, `"complete": false`) {
			t.Errorf("stdout: got\n%s\nwant a JSON fail over an incomplete window", out)
		}
	})

	t.Run("interrupted prints the verdict so far and is inconclusive", func(t *testing.T) {
		n2b := newReplicaExporter(t, "n2", true)
		targets := n1.srv.URL + "/metrics," + n2b.srv.URL + "/metrics," + n3.srv.URL + "/metrics"
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(1500*time.Millisecond, cancel)
		out, errOut, err := runSoakCmd(ctx, "--canary", "n2", "--hours", "24", "--interval", "300ms", "--targets", targets)
		if !errors.Is(err, ErrInconclusive) || ExitCode(err) != ExitInconclusive {
			t.Fatalf("soak: got error %v (exit %d), want inconclusive (exit 2)\nstdout:\n%s\nstderr:\n%s", err, ExitCode(err), out, errOut)
		}
		if !strings.Contains(err.Error(), "interrupted") {
			t.Errorf("error: got %q, want it to say the soak was interrupted", err)
		}
		if !strings.Contains(out, "| heartbeat_drops ") || !strings.Contains(out, "verdict: inconclusive: all gates pass so far, but the window is not over") {
			t.Errorf("stdout: got\n%s\nwant the gate table and the verdict so far", out)
		}
		if !regexp.MustCompile(`interrupted: continue this window with --start \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`).MatchString(errOut) {
			t.Errorf("stderr: got\n%s\nwant how to continue the window", errOut)
		}
	})
}
