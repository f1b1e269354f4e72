package rollout

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/alertmanagertest"
	"github.com/lanectl/lanectl/targets"
)

// webhookRecorder keeps every document posted to it.
type webhookRecorder struct {
	mu   sync.Mutex
	docs [][]byte
}

func (w *webhookRecorder) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.mu.Lock()
	w.docs = append(w.docs, b)
	w.mu.Unlock()
}

// last returns the last document of kind, decoded, and its raw JSON.
func (w *webhookRecorder) last(t *testing.T, kind NotifyKind) (Notification, []byte) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.docs) - 1; i >= 0; i-- {
		var n Notification
		if err := json.Unmarshal(w.docs[i], &n); err != nil {
			t.Fatalf("webhook document %d: %v\n%s", i, err, w.docs[i])
		}
		if n.Kind == kind {
			return n, w.docs[i]
		}
	}
	t.Fatalf("no %s document among %d received", kind, len(w.docs))
	return Notification{}, nil
}

// lockProbe is a webhook that never answers. While lanectl waits on it, it
// takes and drops the rollout lock, proving lanectl released the lock with
// a notification still in flight.
type lockProbe struct {
	mu        sync.Mutex
	statePath string
	asked     int
	free      int
}

func (p *lockProbe) ServeHTTP(_ http.ResponseWriter, r *http.Request) {
	// The server notices a client that went away only once the request
	// body has been read.
	_, _ = io.Copy(io.Discard, r.Body)
	p.mu.Lock()
	p.asked++
	path := p.statePath
	p.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if l, err := AcquireLock(path); err == nil {
			_ = l.Unlock()
			p.mu.Lock()
			p.free++
			p.mu.Unlock()
			break
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
	<-r.Context().Done()
}

// counts returns how many sends arrived, and how many of them saw the
// lock free before lanectl gave up on them.
func (p *lockProbe) counts() (asked, free int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.asked, p.free
}

// The whole story through the lanectl binary, with a real Alertmanager and
// three webhooks (one records, one hangs, one answers 500): a canary's soak
// fails on real heartbeat-lane drops, it is rolled back, enabled again and
// the rollout completes. Every verdict and exit code is what it is without
// notifications; the two broken webhooks are counted in a warning, and the
// lock is free while lanectl still waits on the hanging one; the alerts
// fire, and resolve once the canary is enabled again.
func TestE2ENotify(t *testing.T) {
	const window = 10 * time.Second
	recv := alertmanagertest.StartReceiver(t)
	am := alertmanagertest.Start(t, alertmanagertest.Options{Webhook: recv.URL})
	good := &webhookRecorder{}
	goodSrv := httptest.NewServer(good)
	t.Cleanup(goodSrv.Close)
	probe := &lockProbe{}
	hang := httptest.NewServer(probe)
	t.Cleanup(hang.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(broken.Close)

	notify := fmt.Sprintf("notify:\n  plan_name: e2e\n  timeout: 1s\n  alertmanager:\n    - url: %q\n  webhook:\n    - url: %q\n    - url: %q\n    - url: %q\n",
		am.URL, goodSrv.URL, hang.URL, broken.URL)
	r := newRig(t, rigOptions{
		window:  window,
		stages:  "  - {name: canary}\n  - {name: fleet, max_parallel: 2}\n",
		stageOf: func(i, _ int) string { return map[bool]string{true: "canary", false: "fleet"}[i == 0] },
		extra:   notify,
	})
	// n1 drops every fifth heartbeat-lane message while <env file>.drops
	// exists; disabling clears the env file.
	setCommand(t, r, "enable", `f={{.EnvFile}} && echo {{.Flag.Name}}={{.Flag.Value}} > "$f" && if [ -e "$f.drops" ]; then echo SUPERVISE_EXTRA_ARGS=--inject-drops=heartbeat:5 >> "$f"; fi && `+r.restartCommand())
	setCommand(t, r, "disable", `: > {{.EnvFile}} && `+r.restartCommand())
	probe.mu.Lock()
	probe.statePath = r.statePath()
	probe.mu.Unlock()
	drops := r.fleet.envFile(0) + ".drops"
	if err := os.WriteFile(drops, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// The drop-ratio gates need traffic to judge.
	stopLoad := r.startLoad()
	defer stopLoad()
	// One Alertmanager post and three webhook posts per event.
	const warning = "warning: 2 of 4 notifications failed (see the log); the rollout is not affected"

	// Enabling is not announced; resolving finds nothing to resolve.
	res := r.advance(ctx, 0, "enabled n1")
	if strings.Contains(res.stderr, "warning:") {
		t.Errorf("first enable warned: %v", res)
	}

	// The failing soak: refused as ever, announced, and the two broken
	// webhooks are logged and counted.
	promtest.Eventually(t, 20*time.Second, "heartbeat-lane drops on n1 in Prometheus", func() bool {
		return r.promCountIs(`count(sum(`+targets.LanectlDropped+`{lane="heartbeat",node_id="n1"}) > 0)`, 1)
	})
	_, since := r.state().LastBatch()
	time.Sleep(time.Until(since.Add(2 * time.Second)))
	r.waitScrapedPast(since.Add(2 * time.Second))
	res = r.advance(ctx, 1, "soak failed: n1: heartbeat_drops")
	for _, want := range []string{warning, "lanectl rollback --replica n1"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("refused advance: stderr lacks %q:\n%v", want, res)
		}
	}
	for _, want := range []string{"notify: webhook " + hang.URL + ": post soak_failed of n1: ", "notify: webhook " + broken.URL + ": post soak_failed of n1: POST " + broken.URL + ": 500 Internal Server Error: no"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("refused advance: log lacks %q:\n%v", want, res)
		}
	}
	alerts, err := am.Alerts(ctx, `plan="e2e"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || !labelsEqual(alerts[0].Labels, map[string]string{"alertname": "lanectl_soak_failed", "plan": "e2e", "replica": "n1", "gate": "heartbeat_drops"}) {
		t.Fatalf("alerts after the failed soak: %+v, want lanectl_soak_failed for n1 and heartbeat_drops", alerts)
	}
	doc, raw := good.last(t, NotifySoakFailed)
	if doc.Verdict != "fail" || doc.Plan != "e2e" || len(doc.Gates) == 0 || doc.Window == nil {
		t.Errorf("soak_failed document: %s", raw)
	}
	t.Logf("soak_failed webhook document:\n%s", indent(raw))

	// The rollback: done and verified as ever, announced with its command.
	if err := os.Remove(drops); err != nil {
		t.Fatal(err)
	}
	res = r.lanectl(ctx, "rollback", "--replica", "n1")
	if res.code != 0 || !strings.Contains(res.stdout, "rolled back n1: flag off, verified") || !strings.Contains(res.stderr, warning) {
		t.Fatalf("rollback: %v; want exit 0, verified, and the warning", res)
	}
	doc, raw = good.last(t, NotifyRollback)
	if doc.Verdict != "pass" || len(doc.Commands) != 1 || doc.Commands[0].Replica != "n1" || !strings.HasPrefix(doc.Commands[0].Command, ": > ") || doc.Commands[0].ExitStatus != 0 {
		t.Errorf("rollback document, want a pass with the disable command:\n%s", raw)
	}
	t.Logf("rollback webhook document:\n%s", indent(raw))
	promtest.Eventually(t, 10*time.Second, "Alertmanager to notify both alerts", func() bool {
		return recv.Seen("lanectl_soak_failed", "firing", map[string]string{"replica": "n1"}) && recv.Seen("lanectl_rollback", "firing", map[string]string{"replica": "n1"})
	})

	// n1 is enabled again: a later step succeeded, so both alerts resolve.
	r.advance(ctx, 0, "enabled n1")
	r.requireFlags(ctx, true, false, false)
	if alerts, err := am.Alerts(ctx, `plan="e2e"`); err != nil || len(alerts) != 0 {
		t.Errorf("alerts after n1 was enabled again: %+v (%v), want none", alerts, err)
	}
	promtest.Eventually(t, 10*time.Second, "Alertmanager to notify both alerts resolved", func() bool {
		return recv.Seen("lanectl_soak_failed", "resolved", map[string]string{"replica": "n1"}) && recv.Seen("lanectl_rollback", "resolved", map[string]string{"replica": "n1"})
	})

	// The fleet, then the end of the rollout, announced with the last soak.
	r.waitSoak(window)
	r.advance(ctx, 0, "enabled n2, n3")
	r.waitSoak(window)
	res = r.advance(ctx, 0, "rollout complete")
	// The resolution is one more send.
	if !strings.Contains(res.stderr, strings.Replace(warning, "2 of 4", "2 of 5", 1)) {
		t.Errorf("complete: stderr lacks the warning: %v", res)
	}
	doc, raw = good.last(t, NotifyRolloutComplete)
	if doc.Verdict != "pass" || strings.Join(doc.Replicas, ",") != "n1,n2,n3" || len(doc.Gates) == 0 {
		t.Errorf("rollout_complete document:\n%s", raw)
	}
	alerts, err = am.Alerts(ctx, `plan="e2e"`)
	if err != nil || len(alerts) != 1 || alerts[0].Labels["alertname"] != "lanectl_rollout_complete" {
		t.Errorf("alerts after the rollout: %+v (%v), want lanectl_rollout_complete alone", alerts, err)
	}
	r.requireFlags(ctx, true, true, true)
	// The hanging webhook got the failed soak, the rollback and the end of
	// the rollout, and each time the lock was already free while lanectl
	// still waited for it.
	if asked, free := probe.counts(); asked != 3 || free != 3 {
		t.Errorf("hanging webhook: %d sends, %d saw the lock free; want 3 and 3", asked, free)
	}
}

func indent(b []byte) string {
	var out bytes.Buffer
	if json.Indent(&out, b, "", "  ") != nil {
		return string(b)
	}
	return out.String()
}
