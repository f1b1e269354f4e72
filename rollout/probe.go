package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/expfmt"

	"github.com/lanectl/lanectl/query"
)

// DefaultProbeTimeout bounds each request to a replica's endpoints, and
// each run of the read command, when Prober.Timeout is zero.
const DefaultProbeTimeout = 5 * time.Second

// maxProbeBody bounds what is read from a replica's HTTP endpoints.
const maxProbeBody = 8 << 20

// Probe is what one replica shows about itself at one instant: the flag's
// running value, and each verify check of the plan.
type Probe struct {
	Replica string
	At      time.Time
	Flag    FlagReading
	// Checks are the plan's verify checks in order: the scrape of the
	// replica's metrics, its HTTP paths, its status, its conditions.
	Checks []CheckResult
	// Report is the replica's /status, for a target that has one; nil
	// otherwise or when it could not be read.
	Report *ReplicaReport
}

// CheckResult is one verify check on one replica.
type CheckResult struct {
	// What names the check: "GET /healthz", or the condition's PromQL.
	What string
	OK   bool
	// Detail says what was seen: the status code, the error, the value.
	Detail string
}

// Prober reads what replicas show about themselves, as the plan's target
// and verify section say: their metrics (one fresh scrape of every replica
// of the plan, so a condition can compare a replica with the others),
// their HTTP paths, and the read command through Runner. It is not safe
// for concurrent use.
type Prober struct {
	Plan *Plan
	// Runner runs the read command; nil leaves a flag that only the read
	// command can prove unknown.
	Runner Runner
	// Timeout bounds each request and each read; zero means
	// DefaultProbeTimeout.
	Timeout time.Duration
	clients map[string]*http.Client
}

func (p *Prober) timeout() time.Duration {
	if p.Timeout > 0 {
		return p.Timeout
	}
	return DefaultProbeTimeout
}

// client is the HTTP client for r, built once from its HTTP config.
func (p *Prober) client(r Replica) (*http.Client, error) {
	if c, ok := p.clients[r.Name]; ok {
		return c, nil
	}
	c, err := config.NewClientFromConfig(r.HTTPConfig, "lanectl-verify")
	if err != nil {
		return nil, fmt.Errorf("http client of %s: %w", r.Name, err)
	}
	c.Timeout = p.timeout()
	if p.clients == nil {
		p.clients = map[string]*http.Client{}
	}
	p.clients[r.Name] = c
	return c, nil
}

// CloseIdleConnections closes the connections the prober keeps open.
func (p *Prober) CloseIdleConnections() {
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// Probe reads r's state. It never fails: what could not be read is a
// failed check, or an unknown flag, in the Probe.
func (p *Prober) Probe(ctx context.Context, r Replica, now time.Time) Probe {
	return p.probeAll(ctx, []Replica{r}, now)[r.Name]
}

// probeAll probes rs over one scrape of every replica of the plan.
func (p *Prober) probeAll(ctx context.Context, rs []Replica, now time.Time) map[string]Probe {
	out := map[string]Probe{}
	snap, err := p.scrape(ctx, now)
	for _, r := range rs {
		pr := Probe{Replica: r.Name, At: now}
		if err != nil {
			pr.Checks = append(pr.Checks, CheckResult{What: "scrape metrics", Detail: err.Error()})
		} else {
			pr.Checks = append(pr.Checks, scrapeCheck(snap, r))
		}
		pr.Flag = p.readFlag(ctx, snap, r)
		for _, path := range p.Plan.Verify.HTTP {
			pr.Checks = append(pr.Checks, p.httpCheck(ctx, r, path))
		}
		if p.Plan.Verify.Status != "" {
			c, rep := p.statusCheck(ctx, r, p.Plan.Verify.Status)
			pr.Checks, pr.Report = append(pr.Checks, c), rep
		}
		for _, m := range p.Plan.Verify.Metrics {
			pr.Checks = append(pr.Checks, conditionCheck(ctx, snap, m, r))
		}
		out[r.Name] = pr
	}
	if snap != nil {
		_ = snap.Close()
	}
	return out
}

// scrape takes one fresh scrape of every replica of the plan.
func (p *Prober) scrape(ctx context.Context, now time.Time) (*query.Snapshot, error) {
	eps := make([]query.Endpoint, 0, len(p.Plan.Replicas))
	for _, r := range p.Plan.Replicas {
		c, err := p.client(r)
		if err != nil {
			return nil, err
		}
		eps = append(eps, query.Endpoint{URL: metricsURL(r), Client: c})
	}
	return query.ScrapeOnce(ctx, eps, now, nil)
}

// metricsURL is where r's metrics are scraped.
func metricsURL(r Replica) string { return r.HTTP + "/metrics" }

// scrapeCheck says whether r itself answered the scrape: conditions over
// a replica that did not would all be empty, for a reason this names.
func scrapeCheck(snap *query.Snapshot, r Replica) CheckResult {
	c := CheckResult{What: "GET /metrics"}
	if err, bad := snap.Errs[metricsURL(r)]; bad {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail = true, "scraped"
	return c
}

// conditionCheck evaluates one condition for r over the scrape; it holds
// when its result has a sample that is not NaN and came with no warning.
func conditionCheck(ctx context.Context, snap *query.Snapshot, src string, r Replica) CheckResult {
	expr, err := renderCondition(src, r.Selector, "")
	c := CheckResult{What: expr}
	if err != nil {
		c.What, c.Detail = src, err.Error()
		return c
	}
	if snap == nil {
		c.Detail = "no scrape"
		return c
	}
	ok, detail := holds(ctx, snap, expr)
	c.OK, c.Detail = ok, detail
	return c
}

// holds evaluates expr over the scrape: non-empty, not NaN, no warning.
func holds(ctx context.Context, snap *query.Snapshot, expr string) (bool, string) {
	vec, warns, err := snap.QueryNow(ctx, expr)
	switch {
	case err != nil:
		return false, err.Error()
	case len(warns) > 0:
		return false, "warning: " + strings.Join(warns, "; ")
	}
	for _, s := range vec {
		if !math.IsNaN(s.Value) {
			return true, fmt.Sprintf("holds (%g)", s.Value)
		}
	}
	if len(vec) > 0 {
		return false, "NaN"
	}
	return false, "empty result"
}

func (p *Prober) httpCheck(ctx context.Context, r Replica, path string) CheckResult {
	c := CheckResult{What: "GET " + path}
	code, body, err := p.get(ctx, r, path)
	switch {
	case err != nil:
		c.Detail = err.Error()
	default:
		c.OK = code >= 200 && code < 300
		c.Detail = fmt.Sprintf("%d %s", code, firstLine(string(body)))
	}
	return c
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (p *Prober) get(ctx context.Context, r Replica, path string) (int, []byte, error) {
	c, err := p.client(r)
	if err != nil {
		return 0, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.HTTP+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		return 0, nil, fmt.Errorf("read %s: %w", query.RedactURL(r.HTTP+path), err)
	}
	return resp.StatusCode, body, nil
}

// Check says whether the probe shows the flag as wanted (on: the plan's
// value; off: unset) with every verify check holding, and if not,
// everything that is wrong.
func (pr Probe) Check(wantEnabled bool) (bool, string) {
	var bad, good []string
	switch {
	case !pr.Flag.Known:
		bad = append(bad, "flag unknown: "+pr.Flag.Detail)
	case !pr.Flag.Is(wantEnabled):
		bad = append(bad, fmt.Sprintf("%s, want %q", pr.Flag.Detail, pr.Flag.want(wantEnabled)))
	default:
		good = append(good, pr.Flag.Detail)
	}
	for _, c := range pr.Checks {
		if !c.OK {
			bad = append(bad, c.What+": "+c.Detail)
		}
	}
	if len(bad) > 0 {
		return false, strings.Join(bad, "; ")
	}
	good = append(good, fmt.Sprintf("%d checks hold", len(pr.Checks)))
	if pr.Report != nil {
		leader := pr.Report.Leader
		if leader == "" {
			leader = fmt.Sprint(pr.Report.LeaderRaftID)
		}
		good = append(good, fmt.Sprintf("leader %s, applied %d", leader, pr.Report.Applied))
	}
	return true, strings.Join(good, ", ")
}

// Health says whether every verify check held, and if not, the first that
// did not.
func (pr Probe) Health() (bool, string) {
	for _, c := range pr.Checks {
		if !c.OK {
			return false, c.What + ": " + c.Detail
		}
	}
	return true, fmt.Sprintf("%d checks hold", len(pr.Checks))
}

// MetricsErr is why the replica's own metrics could not be scraped; nil
// when they were.
func (pr Probe) MetricsErr() error {
	for _, c := range pr.Checks {
		if c.What == "GET /metrics" && !c.OK {
			return errors.New(c.Detail)
		}
	}
	return nil
}
