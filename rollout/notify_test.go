package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/alertmanagertest"
	"github.com/lanectl/lanectl/targets"
)

// failedSoak is a soak of c1 that failed heartbeat_drops (c1 is the
// culprit, f1 a passing baseline) and passed coverage.
func failedSoak() gates.Result {
	return gates.Result{
		Verdict:  gates.Fail,
		Window:   gates.Window{Start: at(0), End: at(60)},
		Complete: false,
		Reason:   "1 of 2 gates failed",
		Gates: []gates.GateResult{
			{Name: "heartbeat_drops", Verdict: gates.Fail, Reason: "canary c1: 14 > 0", Query: "sum by (node_id) (increase(drops[1h]))", Threshold: "max 0",
				Values: []gates.ReplicaValue{
					{Replica: "c1", Role: "canary", Value: 14, Verdict: gates.Fail, Reason: "14 heartbeat-lane drops > max 0"},
					{Replica: "f1", Role: "baseline", Value: 0, Verdict: gates.Pass},
				}},
			{Name: "coverage", Verdict: gates.Pass, Reason: "ok", Query: "coverage", Threshold: "min 0.9",
				Values: []gates.ReplicaValue{{Replica: "c1", Role: "canary", Value: math.NaN(), Missing: true, Verdict: gates.Pass}}},
		},
	}
}

func notifyDriver(t *testing.T, cfg NotifyConfig) (*Driver, *bytes.Buffer) {
	t.Helper()
	if cfg.PlanName == "" {
		cfg.PlanName = "test-plan"
	}
	var log bytes.Buffer
	p := testPlan(t)
	p.Notify = cfg
	return &Driver{Plan: p, Now: time.Now, Log: &log, Notifier: NewNotifier(cfg)}, &log
}

func receiverAt(u string) NotifyReceiver {
	return NotifyReceiver{URL: u, HTTPConfig: config.DefaultHTTPClientConfig}
}

// Alerts reach a real Alertmanager with the plan, replica and gate labels,
// its route (the README's) notifies them, and a later successful step
// resolves them there.
func TestNotifyAlertmanager(t *testing.T) {
	ctx := t.Context()
	recv := alertmanagertest.StartReceiver(t)
	am := alertmanagertest.Start(t, alertmanagertest.Options{Webhook: recv.URL})
	d, log := notifyDriver(t, NotifyConfig{Timeout: 5 * time.Second, Alertmanager: []NotifyReceiver{receiverAt(am.URL)}})

	d.notifySoakFailed(ctx, []string{"c1"}, failedSoak())
	if s, fs := d.Notifier.Flush(); s != (NotifyStats{Sent: 1}) || fs != nil {
		t.Fatalf("soak failed: stats %+v, failures %v; want 1 sent", s, fs)
	}
	got, err := am.Alerts(ctx, `plan="test-plan"`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("alerts in Alertmanager: %+v, want one for c1 and heartbeat_drops", got)
	}
	a := got[0]
	want := map[string]string{"alertname": "lanectl_soak_failed", "plan": "test-plan", "replica": "c1", "gate": "heartbeat_drops"}
	if !labelsEqual(a.Labels, want) {
		t.Errorf("labels = %v, want %v", a.Labels, want)
	}
	if a.Annotations["description"] != "14 heartbeat-lane drops > max 0" || !strings.Contains(a.Annotations["query"], "increase(drops[1h])") {
		t.Errorf("annotations = %v, want the replica's reason and the gate's query", a.Annotations)
	}
	if a.Status.State != "active" || time.Until(a.EndsAt) < 24*time.Hour {
		t.Errorf("state %s, endsAt %v; want active and held for the default hold", a.Status.State, a.EndsAt)
	}

	st, err := LoadState(d.Plan.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	d.notifyRollback(ctx, st, Event{Step: StepDisable, Replicas: []string{"c1"}}, nil)
	d.Notifier.Flush()
	promtest.Eventually(t, 10*time.Second, "both alerts notified through the lanectl route", func() bool {
		return recv.Seen("lanectl_soak_failed", "firing", map[string]string{"replica": "c1", "gate": "heartbeat_drops"}) &&
			recv.Seen("lanectl_rollback", "firing", map[string]string{"replica": "c1", "plan": "test-plan"})
	})
	if got, _ := am.Alerts(ctx, `plan="test-plan"`); len(got) != 2 {
		t.Fatalf("alerts after the rollback: %+v, want soak_failed and rollback", got)
	}
	// Another plan's alert is not lanectl's to resolve.
	other, otherLog := notifyDriver(t, NotifyConfig{PlanName: "other-plan", Alertmanager: []NotifyReceiver{receiverAt(am.URL)}})
	other.notifySoakFailed(ctx, []string{"c1"}, failedSoak())
	other.notifyFlush(new(NotifyStats))

	d.notifyStepSucceeded(ctx)
	if s, fs := d.Notifier.Flush(); s != (NotifyStats{Sent: 1}) || fs != nil {
		t.Fatalf("resolve: stats %+v, failures %v", s, fs)
	}
	if got, _ := am.Alerts(ctx, `plan="test-plan"`); len(got) != 0 {
		t.Errorf("alerts after a later step succeeded: %+v, want none (resolved)", got)
	}
	if got, _ := am.Alerts(ctx, `plan="other-plan"`); len(got) != 1 {
		t.Errorf("the other plan's alerts: %+v, want its soak failure still firing", got)
	}
	promtest.Eventually(t, 10*time.Second, "the resolved notifications", func() bool {
		return recv.Seen("lanectl_soak_failed", "resolved", map[string]string{"replica": "c1", "plan": "test-plan"}) &&
			recv.Seen("lanectl_rollback", "resolved", map[string]string{"replica": "c1", "plan": "test-plan"})
	})

	res := &AdvanceResult{Soak: &gates.Result{Verdict: gates.Pass, Reason: "every gate passed"}}
	d.notifyComplete(ctx, res)
	d.notifyFlush(&res.Notify)
	if res.Notify != (NotifyStats{Sent: 2}) {
		t.Errorf("complete: stats %+v, want 2 sent (resolve, announce)", res.Notify)
	}
	got, _ = am.Alerts(ctx, `alertname="lanectl_rollout_complete"`)
	if len(got) != 1 || got[0].Labels["plan"] != "test-plan" || got[0].Labels["replica"] != "" {
		t.Errorf("rollout complete alerts: %+v, want one for the plan without a replica", got)
	}
	if log.Len() != 0 || otherLog.Len() != 0 {
		t.Errorf("log has failures:\n%s%s", log, otherLog)
	}
}

func labelsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

// hangingServer answers nothing until the client gives up (or the test
// ends). Each request calls every track with +1 when it arrives and -1 when
// it ends.
func hangingServer(t *testing.T, track ...func(delta int)) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, f := range track {
			f(1)
			defer f(-1)
		}
		// The server notices a client that went away only once the
		// request body has been read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

// One webhook that records, one that hangs past the deadline, one that
// answers 500: the hook returns at once, Flush returns within the deadline
// and a second, and the two failures are counted and logged.
func TestNotifyWebhookFailuresCounted(t *testing.T) {
	var mu sync.Mutex
	var docs [][]byte
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		docs = append(docs, b.Bytes())
		mu.Unlock()
	}))
	defer good.Close()
	hang := hangingServer(t)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "receiver exploded", http.StatusInternalServerError)
	}))
	defer broken.Close()

	const timeout = 500 * time.Millisecond
	d, log := notifyDriver(t, NotifyConfig{Timeout: timeout, Webhook: []NotifyReceiver{receiverAt(good.URL), receiverAt(hang.URL), receiverAt(broken.URL)}})
	// The commands the step ran are in the document.
	d.Runner = d.Notifier.Runner(LocalRunner{Timeout: 5 * time.Second})
	if _, err := d.Runner.Run(t.Context(), Replica{Name: "c1"}, "true"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	d.notifySoakFailed(t.Context(), []string{"c1"}, failedSoak())
	if took := time.Since(start); took > timeout/2 {
		t.Errorf("the hook took %v: it must not wait for the receivers", took)
	}
	var stats NotifyStats
	d.notifyFlush(&stats)
	if took := time.Since(start); took > timeout+flushSlack+time.Second {
		t.Errorf("flush took %v with a hanging receiver, want at most the timeout and its slack", took)
	}
	if stats != (NotifyStats{Sent: 1, Failed: 2}) {
		t.Errorf("stats = %+v, want 1 sent and 2 failed", stats)
	}
	if w := stats.WarningLine(); !strings.Contains(w, "2 of 3 notifications failed") {
		t.Errorf("warning = %q", w)
	}
	for _, want := range []string{hang.URL + ": post soak_failed of c1: ", "context deadline exceeded", broken.URL + ": post soak_failed of c1: POST " + broken.URL + ": 500 Internal Server Error: receiver exploded"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	if len(docs) != 1 {
		t.Fatalf("the good receiver got %d documents, want 1", len(docs))
	}
	var doc Notification
	if err := json.Unmarshal(docs[0], &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 1 || doc.Kind != NotifySoakFailed || doc.Plan != "test-plan" || doc.Verdict != "fail" || strings.Join(doc.Replicas, ",") != "c1" {
		t.Errorf("document = %+v", doc)
	}
	if len(doc.Gates) != 2 || doc.Gates[0].Name != "heartbeat_drops" || doc.Gates[0].Values[0].Value != 14 || doc.Window == nil {
		t.Errorf("gate table = %+v, window %v; want both gates with values", doc.Gates, doc.Window)
	}
	if len(doc.Commands) != 1 || doc.Commands[0].Command != "true" || doc.Commands[0].Replica != "c1" || doc.Commands[0].ExitStatus != 0 {
		t.Errorf("commands = %+v, want the one command run", doc.Commands)
	}
	// A missing value is null, never a number.
	if !bytes.Contains(docs[0], []byte(`"value":null`)) {
		t.Errorf("document does not write the missing coverage value as null:\n%s", docs[0])
	}

	// The next command starts clean: counts and commands were reset.
	d.notifySoakFailed(t.Context(), []string{"c1"}, failedSoak())
	d.notifyFlush(&stats)
	if stats != (NotifyStats{Sent: 1, Failed: 2}) {
		t.Errorf("second command: stats = %+v, want 1 sent and 2 failed again", stats)
	}
	var second Notification
	if err := json.Unmarshal(docs[1], &second); err != nil || len(second.Commands) != 0 {
		t.Errorf("second document: commands %+v (%v), want none", second.Commands, err)
	}
}

// More sends than MaxInFlight to a hanging receiver: never more than
// MaxInFlight requests at once, and all are accounted for.
func TestNotifyInFlightBounded(t *testing.T) {
	var mu sync.Mutex
	var inFlight, peak int
	hang := hangingServer(t, func(delta int) {
		mu.Lock()
		defer mu.Unlock()
		inFlight += delta
		peak = max(peak, inFlight)
	})
	var rs []NotifyReceiver
	for range 2 * MaxInFlight {
		rs = append(rs, receiverAt(hang.URL))
	}
	d, _ := notifyDriver(t, NotifyConfig{Timeout: 300 * time.Millisecond, Webhook: rs})
	d.notifySoakFailed(t.Context(), []string{"c1"}, failedSoak())
	var stats NotifyStats
	d.notifyFlush(&stats)
	if stats != (NotifyStats{Failed: 2 * MaxInFlight}) {
		t.Errorf("stats = %+v, want all %d failed", stats, 2*MaxInFlight)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak > MaxInFlight || peak == 0 {
		t.Errorf("peak requests in flight = %d, want 1..%d", peak, MaxInFlight)
	}
}

// An Alertmanager that is down, or a client that cannot be built, is a
// counted failure and nothing else.
func TestNotifyUnreachable(t *testing.T) {
	bad := config.DefaultHTTPClientConfig
	bad.TLSConfig.CAFile = "/nonexistent/ca.pem"
	d, log := notifyDriver(t, NotifyConfig{Timeout: time.Second, Alertmanager: []NotifyReceiver{receiverAt("http://127.0.0.1:1"), {URL: "https://127.0.0.1:2", HTTPConfig: bad}}})
	d.notifyStepSucceeded(t.Context())
	var stats NotifyStats
	d.notifyFlush(&stats)
	if stats != (NotifyStats{Failed: 2}) {
		t.Errorf("stats = %+v, want 2 failed", stats)
	}
	for _, want := range []string{"connection refused", "build http client", "/nonexistent/ca.pem"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// A rollback advance started itself says which enable failed; one that
// did not verify is a fail, and its alert says the flag state is unknown.
func TestNotifyRollbackReasons(t *testing.T) {
	ctx := t.Context()
	recv := &webhookRecorder{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	am := alertmanagertest.Start(t, alertmanagertest.Options{})
	d, log := notifyDriver(t, NotifyConfig{Timeout: 5 * time.Second, Webhook: []NotifyReceiver{receiverAt(srv.URL)}, Alertmanager: []NotifyReceiver{receiverAt(am.URL)}})
	st, err := LoadState(d.Plan.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	en, err := st.Start(StepEnable, []string{"s1"}, at(0), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.End(en, PhaseFailed, at(1), "s1: "+targets.LanectlLanesEnabled+" = 0, want 1"); err != nil {
		t.Fatal(err)
	}
	rb, err := st.Start(StepDisable, []string{"s1"}, at(1), true)
	if err != nil {
		t.Fatal(err)
	}
	d.notifyRollback(ctx, st, rb, nil)
	d.notifyFlush(new(NotifyStats))
	doc, raw := recv.last(t, NotifyRollback)
	if doc.Verdict != "pass" || doc.Reason != "automatic rollback: the enable did not verify: s1: "+targets.LanectlLanesEnabled+" = 0, want 1" {
		t.Errorf("automatic rollback document:\n%s", raw)
	}

	d.notifyRollback(ctx, st, Event{Step: StepDisable, Replicas: []string{"c1"}}, errors.New("c1: timed out"))
	d.notifyFlush(new(NotifyStats))
	doc, raw = recv.last(t, NotifyRollback)
	if doc.Verdict != "fail" || doc.Reason != "lanectl rollback; the disable did not verify: c1: timed out" {
		t.Errorf("unverified rollback document:\n%s", raw)
	}
	alerts, err := am.Alerts(ctx, `replica="c1"`)
	if err != nil || len(alerts) != 1 || !strings.Contains(alerts[0].Annotations["summary"], "did not verify") {
		t.Errorf("alerts for c1: %+v (%v), want the unverified rollback", alerts, err)
	}
	if log.Len() != 0 {
		t.Errorf("log has failures:\n%s", log)
	}
}

// A receiver's URL may carry a password: a failed send names the receiver
// with the password redacted, whether it answered an error or could not be
// reached at all.
func TestNotifyFailuresHideThePassword(t *testing.T) {
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer broken.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	withPassword := func(u string) string { return strings.Replace(u, "http://", "http://lanectl:s3cret@", 1) + "/hook" }

	d, log := notifyDriver(t, NotifyConfig{Timeout: 5 * time.Second, Webhook: []NotifyReceiver{receiverAt(withPassword(broken.URL)), receiverAt(withPassword(gone.URL))}})
	d.notifySoakFailed(t.Context(), []string{"c1"}, failedSoak())
	var stats NotifyStats
	d.notifyFlush(&stats)
	if stats.Failed != 2 {
		t.Fatalf("stats = %+v, want 2 failed", stats)
	}
	if strings.Contains(log.String(), "s3cret") {
		t.Errorf("log shows the password:\n%s", log)
	}
	for _, want := range []string{"POST http://lanectl:xxxxx@" + strings.TrimPrefix(broken.URL, "http://") + "/hook: 500", "http://lanectl:xxxxx@" + strings.TrimPrefix(gone.URL, "http://") + "/hook: post soak_failed of c1: "} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
