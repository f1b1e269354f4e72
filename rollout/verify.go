package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrVerifyTimeout is returned by Verify when a replica did not reach the
// wanted state before the timeout.
var ErrVerifyTimeout = errors.New("verification timed out")

// Verify probes every replica of rs until each has passed
// Check(wantEnabled) on settle consecutive probes, or timeout passes. Each
// round is one scrape of every replica of the plan. It returns every
// replica's last complete probe; the error names every replica that did
// not get there with its last probe's reasons.
func (p *Prober) Verify(ctx context.Context, rs []Replica, wantEnabled bool, timeout, interval time.Duration, settle int, now func() time.Time) (map[string]Probe, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	good := map[string]int{}
	last := map[string]Probe{}
	why := map[string]string{}
	for {
		var todo []Replica
		for _, r := range rs {
			if good[r.Name] < settle {
				todo = append(todo, r)
			}
		}
		probes := p.probeAll(ctx, todo, now())
		if ctx.Err() == nil {
			// A probe cut short by the deadline says nothing about the
			// replica; keep the last complete one.
			for _, r := range todo {
				pr := probes[r.Name]
				ok, reason := pr.Check(wantEnabled)
				last[r.Name], why[r.Name] = pr, reason
				if ok {
					good[r.Name]++
				} else {
					good[r.Name] = 0
				}
			}
		}
		done := true
		for _, r := range rs {
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
					reason, ok := why[r.Name]
					if !ok {
						reason = "no complete probe"
					}
					bad = append(bad, fmt.Sprintf("%s: %s", r.Name, reason))
				}
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return last, fmt.Errorf("%w after %v: %s", ErrVerifyTimeout, timeout, strings.Join(bad, "; "))
			}
			return last, fmt.Errorf("verify: %w: %s", ctx.Err(), strings.Join(bad, "; "))
		case <-time.After(interval):
		}
	}
}

// DescribeVerify says, for a dry run, what verifying a replica with the
// flag on (or off) checks.
func (p *Plan) DescribeVerify(enable bool) string {
	want, _ := p.Verify.FlagProof.Running(p.Flag.Value)
	if !enable {
		want, _ = p.Verify.FlagProof.Running("")
	}
	var proof []string
	if p.Verify.FlagProof.FromMetrics() {
		expr, _ := renderCondition(p.Verify.FlagProof.Holds, "SELECTOR", want)
		proof = append(proof, "its metrics show "+strings.Replace(expr, "{SELECTOR}", "{<replica>}", 1))
	}
	if p.Commands.Read != "" {
		proof = append(proof, "commands.read prints a value parsed as "+fmt.Sprintf("%q", want))
	}
	checks := []string{"its /metrics scraped"}
	for _, h := range p.Verify.HTTP {
		checks = append(checks, "GET "+h+" 2xx")
	}
	if p.Verify.Status != "" {
		checks = append(checks, "a leader in "+p.Verify.Status)
	}
	if n := len(p.Verify.Metrics); n > 0 {
		checks = append(checks, fmt.Sprintf("%d metrics conditions hold", n))
	}
	return fmt.Sprintf("verify: %s runs %s (%s); %s; %d good probes %s apart within %s",
		p.Flag.Name, fmt.Sprintf("%q", want), strings.Join(proof, " and "), strings.Join(checks, ", "), p.Verify.Settle, p.Verify.Interval, p.Verify.Timeout)
}
