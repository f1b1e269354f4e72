package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/node/replica/status"
)

// LanesEnabledMetric is the gauge that proves which dispatcher layout a
// replica runs.
const LanesEnabledMetric = "elastickv_raft_dispatcher_lanes_enabled"

// maxProbeBody bounds what is read from a replica's HTTP endpoints.
const maxProbeBody = 8 << 20

// ReplicaReport is a replica's /status document; the rollout reads its
// role, term, leader, applied and leader commit indexes and lanes flag.
type ReplicaReport = status.Replica

// Probe is what one replica says about itself at one instant, from its own
// /metrics, /healthz and /status.
type Probe struct {
	Replica string
	At      time.Time
	// LanesEnabled is the gauge's value; nil when /metrics could not be
	// read or lacks it (MetricsErr says why).
	LanesEnabled *bool
	MetricsErr   error
	// Healthy is true when /healthz answered 200; Health is its body or
	// the error.
	Healthy bool
	Health  string
	// Report is /status; nil when it could not be read (StatusErr).
	Report    *ReplicaReport
	StatusErr error
}

// Prober reads replicas' HTTP endpoints. The client's timeout bounds each
// request.
type Prober struct {
	Client *http.Client
}

// Probe reads r's /metrics, /healthz and /status. It never fails: what
// could not be read is recorded in the Probe.
func (p Prober) Probe(ctx context.Context, r Replica, now time.Time) Probe {
	pr := Probe{Replica: r.Name, At: now}
	pr.LanesEnabled, pr.MetricsErr = p.lanesEnabled(ctx, r)
	code, body, err := p.get(ctx, r.HTTP+"/healthz")
	switch {
	case err != nil:
		pr.Health = err.Error()
	default:
		pr.Healthy = code == http.StatusOK
		pr.Health = fmt.Sprintf("%d %s", code, strings.TrimSpace(string(body)))
	}
	code, body, err = p.get(ctx, r.HTTP+"/status")
	switch {
	case err != nil:
		pr.StatusErr = err
	case code != http.StatusOK:
		pr.StatusErr = fmt.Errorf("GET /status: %d %s", code, strings.TrimSpace(string(body)))
	default:
		var rep ReplicaReport
		if err := json.Unmarshal(body, &rep); err != nil {
			pr.StatusErr = fmt.Errorf("GET /status: %w", err)
		} else {
			pr.Report = &rep
		}
	}
	return pr
}

func (p Prober) get(ctx context.Context, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := p.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", url, err)
	}
	return resp.StatusCode, body, nil
}

func (p Prober) lanesEnabled(ctx context.Context, r Replica) (*bool, error) {
	code, body, err := p.get(ctx, r.HTTP+"/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", code)
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := tp.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	mf, ok := fams[LanesEnabledMetric]
	if !ok || len(mf.GetMetric()) == 0 {
		return nil, fmt.Errorf("/metrics has no %s", LanesEnabledMetric)
	}
	var v float64
	switch m := mf.GetMetric()[0]; {
	case m.GetGauge() != nil:
		v = m.GetGauge().GetValue()
	case m.GetUntyped() != nil:
		v = m.GetUntyped().GetValue()
	default:
		return nil, fmt.Errorf("%s is not a gauge", LanesEnabledMetric)
	}
	switch v {
	case 1:
		on := true
		return &on, nil
	case 0:
		off := false
		return &off, nil
	}
	return nil, fmt.Errorf("%s = %v, want 0 or 1", LanesEnabledMetric, v)
}

// Check says whether the probe shows the flag as wanted on a healthy replica
// that knows its leader, and if not, everything that is wrong.
func (pr Probe) Check(wantEnabled bool) (bool, string) {
	var bad []string
	switch {
	case pr.LanesEnabled == nil:
		bad = append(bad, fmt.Sprintf("%s unknown: %v", LanesEnabledMetric, pr.MetricsErr))
	case *pr.LanesEnabled != wantEnabled:
		bad = append(bad, fmt.Sprintf("%s = %d, want %d", LanesEnabledMetric, b2i(*pr.LanesEnabled), b2i(wantEnabled)))
	}
	if !pr.Healthy {
		bad = append(bad, "/healthz: "+pr.Health)
	}
	switch {
	case pr.Report == nil:
		bad = append(bad, fmt.Sprintf("/status: %v", pr.StatusErr))
	case pr.Report.LeaderRaftID == 0 && pr.Report.Leader == "":
		bad = append(bad, fmt.Sprintf("/status: no leader (role %s, term %d)", pr.Report.Role, pr.Report.Term))
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	leader := pr.Report.Leader
	if leader == "" {
		leader = fmt.Sprint(pr.Report.LeaderRaftID)
	}
	return true, fmt.Sprintf("%s = %d, healthy, leader %s, applied %d", LanesEnabledMetric, b2i(wantEnabled), leader, pr.Report.Applied)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ErrVerifyTimeout is returned by Verify when a replica did not reach the
// wanted state before the timeout.
var ErrVerifyTimeout = errors.New("verification timed out")

// Verify probes every replica until each has passed Check(wantEnabled) on
// settle consecutive probes, or timeout passes. The error names every
// replica that did not get there with its last probe's reasons.
func (p Prober) Verify(ctx context.Context, rs []Replica, wantEnabled bool, timeout, interval time.Duration, settle int, now func() time.Time) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	good := map[string]int{}
	last := map[string]string{}
	for {
		done := true
		for _, r := range rs {
			if good[r.Name] >= settle {
				continue
			}
			ok, why := p.Probe(ctx, r, now()).Check(wantEnabled)
			if ctx.Err() != nil {
				// A probe cut short by the deadline says nothing about the
				// replica; keep the reason from the last complete one.
				if _, seen := last[r.Name]; !seen {
					last[r.Name] = why
				}
				done = false
				break
			}
			last[r.Name] = why
			if ok {
				good[r.Name]++
			} else {
				good[r.Name] = 0
			}
			if good[r.Name] < settle {
				done = false
			}
		}
		if done {
			return last, nil
		}
		select {
		case <-ctx.Done():
			var bad []string
			for _, r := range rs {
				if good[r.Name] < settle {
					bad = append(bad, fmt.Sprintf("%s: %s", r.Name, last[r.Name]))
				}
			}
			if ctx.Err() == context.DeadlineExceeded {
				return last, fmt.Errorf("%w after %v: %s", ErrVerifyTimeout, timeout, strings.Join(bad, "; "))
			}
			return last, fmt.Errorf("verify: %w: %s", ctx.Err(), strings.Join(bad, "; "))
		case <-time.After(interval):
		}
	}
}
