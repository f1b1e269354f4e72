package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
)

// Alertmanager is spoken to through its v2 API with plain JSON: the
// postable and gettable alert shapes are five documented fields, and the
// generated client (github.com/prometheus/alertmanager/api/v2/client)
// would bring in the go-openapi runtime for them.

// Alert label names and the alertname prefix; dashboards' routes and
// silences match on them.
const (
	AlertNamePrefix = "lanectl_"
	AlertLabelPlan  = "plan"
	// AlertLabelReplica is absent on lanectl_rollout_complete.
	AlertLabelReplica = "replica"
	// AlertLabelGate is on lanectl_soak_failed only.
	AlertLabelGate = "gate"
)

// resolvedKinds are the alerts a later successful step resolves;
// lanectl_rollout_complete is an announcement that Alertmanager ends by
// itself after its resolve_timeout.
var resolvedKinds = []NotifyKind{NotifySoakFailed, NotifyRollback}

// amAlert is Alertmanager's postableAlert (and the part of gettableAlert
// lanectl reads back).
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    string            `json:"startsAt,omitempty"`
	EndsAt      string            `json:"endsAt,omitempty"`
}

func amTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// alerts turns an event into the alerts it fires: one per failing replica
// and gate for a failed soak, one per replica for a rollback, one for the
// complete rollout.
func (n *Notifier) alerts(ev Notification) []amAlert {
	name := AlertNamePrefix + string(ev.Kind)
	base := func(replica string) map[string]string {
		l := map[string]string{"alertname": name, AlertLabelPlan: ev.Plan}
		if replica != "" {
			l[AlertLabelReplica] = replica
		}
		return l
	}
	firing := func(l, a map[string]string) amAlert {
		// Alertmanager ends an alert without endsAt after its
		// resolve_timeout (5m by default); these stay until a later step
		// resolves them, or the hold runs out.
		return amAlert{Labels: l, Annotations: a, StartsAt: amTime(ev.Time), EndsAt: amTime(ev.Time.Add(n.cfg.Hold))}
	}
	var out []amAlert
	switch ev.Kind {
	case NotifySoakFailed:
		for _, g := range ev.Gates {
			if g.Verdict != gates.Fail {
				continue
			}
			for _, rep := range failingReplicas(g, ev.Replicas) {
				l := base(rep.name)
				l[AlertLabelGate] = g.Name
				out = append(out, firing(l, map[string]string{
					"summary":     fmt.Sprintf("soak of %s failed gate %s", rep.name, g.Name),
					"description": rep.reason,
					"query":       g.Query,
					"threshold":   g.Threshold,
				}))
			}
		}
		if len(out) == 0 {
			// Failed as a whole, with no gate to blame.
			for _, r := range ev.Replicas {
				out = append(out, firing(base(r), map[string]string{"summary": "soak of " + r + " failed", "description": ev.Reason}))
			}
		}
	case NotifyRollback:
		for _, r := range ev.Replicas {
			summary := fmt.Sprintf("%s rolled back: %s is off, verified", r, ev.Flag.Name)
			if ev.Verdict != string(gates.Pass) {
				summary = fmt.Sprintf("rollback of %s did not verify: its %s state is unknown", r, ev.Flag.Name)
			}
			out = append(out, firing(base(r), map[string]string{"summary": summary, "description": ev.Reason}))
		}
	case NotifyRolloutComplete:
		out = append(out, amAlert{Labels: base(""), StartsAt: amTime(ev.Time), Annotations: map[string]string{
			"summary":     "rollout complete: every replica has " + ev.Flag.Name + "=" + ev.Flag.Value,
			"description": ev.Reason,
		}})
	}
	return out
}

type blamed struct{ name, reason string }

// failingReplicas are the replicas a failed gate blames; the whole batch
// when it blames none in particular.
func failingReplicas(g gates.GateResult, batch []string) []blamed {
	var out []blamed
	for _, v := range g.Values {
		if v.Verdict == gates.Fail {
			out = append(out, blamed{v.Replica, v.Reason})
		}
	}
	if len(out) == 0 {
		for _, r := range batch {
			out = append(out, blamed{r, g.Reason})
		}
	}
	return out
}

func alertSummary(as []amAlert) string {
	names := map[string]bool{}
	for _, a := range as {
		names[a.Labels["alertname"]] = true
	}
	var ns []string
	for n := range names {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return fmt.Sprintf("%d alerts (%s)", len(as), strings.Join(ns, ", "))
}

// postAlerts posts alerts to base's /api/v2/alerts.
func postAlerts(ctx context.Context, c *http.Client, base string, alerts []amAlert) error {
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	return notifyRequest(ctx, c, http.MethodPost, base+"/api/v2/alerts", body, nil)
}

// resolveAlerts reads the plan's firing lanectl_soak_failed and
// lanectl_rollback alerts back from Alertmanager and posts each again with
// endsAt now. Reading them back, instead of remembering what was fired,
// resolves what an earlier run (or another operator's machine) fired too.
func resolveAlerts(ctx context.Context, c *http.Client, base, plan string, now time.Time) error {
	var kinds []string
	for _, k := range resolvedKinds {
		kinds = append(kinds, AlertNamePrefix+string(k))
	}
	q := url.Values{"filter": {
		fmt.Sprintf("%s=%q", AlertLabelPlan, plan),
		fmt.Sprintf("alertname=~%q", strings.Join(kinds, "|")),
	}}
	var firing []amAlert
	if err := notifyRequest(ctx, c, http.MethodGet, base+"/api/v2/alerts?"+q.Encode(), nil, &firing); err != nil {
		return err
	}
	if len(firing) == 0 {
		return nil
	}
	for i := range firing {
		firing[i].EndsAt = amTime(now)
	}
	return postAlerts(ctx, c, base, firing)
}

// notifyRequest sends one request and, with into, decodes a JSON answer. A status
// other than 2xx is an error that quotes the start of the body.
func notifyRequest(ctx context.Context, c *http.Client, method, u string, body []byte, into any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	shown := query.RedactURL(u)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, shown, query.URLErrorCause(err))
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, shown, query.URLErrorCause(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, shown, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, shown, resp.Status, strings.TrimSpace(string(data[:min(len(data), 200)])))
	}
	if into != nil {
		if err := json.Unmarshal(data, into); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, shown, err)
		}
	}
	return nil
}
