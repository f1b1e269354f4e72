package rollout

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
)

// NotifyKind is what happened, as a webhook document's kind says it.
type NotifyKind string

// Notification kinds; the Alertmanager alert of each is "lanectl_" + kind.
const (
	NotifySoakFailed      NotifyKind = "soak_failed"
	NotifyRollback        NotifyKind = "rollback"
	NotifyRolloutComplete NotifyKind = "rollout_complete"
)

// NotificationVersion is the version field of every webhook document; it
// changes only when a field changes meaning or goes away.
const NotificationVersion = 1

// Notification is one event, as a webhook receives it (one JSON document
// per POST) and as its Alertmanager alerts are made from.
type Notification struct {
	Version int        `json:"version"`
	Kind    NotifyKind `json:"kind"`
	// Plan is notify.plan_name.
	Plan string     `json:"plan"`
	Time time.Time  `json:"time"`
	Flag NotifyFlag `json:"flag"`
	// Replicas are the replicas the event is about: the judged batch, the
	// replica rolled back, or every replica when the rollout completed.
	Replicas []string `json:"replicas"`
	// Verdict is the soak's verdict for soak_failed (fail) and
	// rollout_complete (pass, the last soak); for rollback, pass when the
	// replica proved the flag off and fail when it did not.
	Verdict string `json:"verdict"`
	Reason  string `json:"reason"`
	// Window and Gates are the soak behind the event: absent for a
	// rollback that no soak decided.
	Window *gates.Window      `json:"window,omitempty"`
	Gates  []gates.GateResult `json:"gates"`
	// Commands are the remote commands this run of lanectl ran since the
	// previous notification, in order.
	Commands []CommandRun `json:"commands"`
}

// NotifyFlag is the plan's flag as a webhook document names it.
type NotifyFlag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (d *Driver) notification(kind NotifyKind, replicas []string, verdict, reason string) Notification {
	return Notification{
		Version:  NotificationVersion,
		Kind:     kind,
		Plan:     d.Notifier.cfg.PlanName,
		Time:     d.Now().UTC(),
		Flag:     NotifyFlag{Name: d.Plan.Flag.Name, Value: d.Plan.Flag.Value},
		Replicas: slices.Clone(replicas),
		Verdict:  verdict,
		Reason:   reason,
		Gates:    []gates.GateResult{},
		Commands: d.Notifier.takeCommands(),
	}
}

func withSoak(n Notification, r *gates.Result) Notification {
	if r != nil {
		w := r.Window
		n.Window = &w
		n.Gates = r.Gates
	}
	return n
}

// notifySoakFailed announces a soak of batch that failed a gate.
func (d *Driver) notifySoakFailed(ctx context.Context, batch []string, r gates.Result) {
	if d.Notifier == nil {
		return
	}
	d.Notifier.announce(ctx, withSoak(d.notification(NotifySoakFailed, batch, string(r.Verdict), soakReason(r)), &r))
}

// notifyRollback announces a finished disable step: verified when failure
// is nil. A rollback advance started by itself says which enable failed.
func (d *Driver) notifyRollback(ctx context.Context, st *State, step Event, failure error) {
	if d.Notifier == nil {
		return
	}
	reason := "lanectl rollback"
	if step.Auto {
		reason = "automatic rollback: the enable did not verify"
		for _, e := range slices.Backward(st.Events) {
			if e.Step == StepEnable && e.Phase == PhaseFailed && slices.Equal(e.Replicas, step.Replicas) {
				reason += ": " + e.Reason
				break
			}
		}
	}
	verdict := gates.Pass
	if failure != nil {
		verdict = gates.Fail
		reason += "; the disable did not verify: " + failure.Error()
	}
	d.Notifier.announce(ctx, d.notification(NotifyRollback, step.Replicas, string(verdict), reason))
}

// notifyComplete announces the end of the rollout, with the last soak, and
// resolves what earlier steps fired.
func (d *Driver) notifyComplete(ctx context.Context, res *AdvanceResult) {
	if d.Notifier == nil {
		return
	}
	d.Notifier.resolve(ctx, d.Now())
	reason := "every replica has " + d.Plan.Flag.Name + "=" + d.Plan.Flag.Value
	if res.Soak != nil {
		reason += "; " + res.Soak.Reason
	}
	d.Notifier.announce(ctx, withSoak(d.notification(NotifyRolloutComplete, names(d.Plan.Order()), string(gates.Pass), reason), res.Soak))
}

// notifyStepSucceeded resolves the alerts of earlier failures: a later step
// (an enable that verified) went through.
func (d *Driver) notifyStepSucceeded(ctx context.Context) {
	if d.Notifier == nil {
		return
	}
	d.Notifier.resolve(ctx, d.Now())
}

// notifyFlush waits (bounded) for this command's sends, logs each failure
// and stores the counts. The Driver defers it before taking the lock, so it
// runs after the lock is released.
func (d *Driver) notifyFlush(stats *NotifyStats) {
	if d.Notifier == nil {
		return
	}
	s, failures := d.Notifier.Flush()
	for _, f := range failures {
		d.logf("notify: %s (the rollout is not affected)", f)
	}
	*stats = s
}

// announce sends n to every webhook and its alerts to every Alertmanager.
func (n *Notifier) announce(ctx context.Context, ev Notification) {
	alerts := n.alerts(ev)
	n.enqueue(ctx, "alertmanager", "post "+alertSummary(alerts), func(ctx context.Context, r *receiver, c *http.Client) error {
		return postAlerts(ctx, c, r.url, alerts)
	})
	n.enqueue(ctx, "webhook", "post "+string(ev.Kind)+" of "+strings.Join(ev.Replicas, ","), func(ctx context.Context, r *receiver, c *http.Client) error {
		return postWebhook(ctx, c, r.url, ev)
	})
}

// resolve ends, in every Alertmanager, the plan's firing
// lanectl_soak_failed and lanectl_rollback alerts.
func (n *Notifier) resolve(ctx context.Context, now time.Time) {
	n.enqueue(ctx, "alertmanager", "resolve earlier alerts", func(ctx context.Context, r *receiver, c *http.Client) error {
		return resolveAlerts(ctx, c, r.url, n.cfg.PlanName, now)
	})
}
