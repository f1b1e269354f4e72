// Package loadgen drives synthetic write load against a running cluster of
// lanectl replicas over their HTTP API, and periodically forces a snapshot
// transfer from a leader to a follower so that a soak exercises the
// snapshot lane as well as replication and heartbeats. On replicas that run
// several raft groups the keys spread over the groups (the replica assigns
// each key to a group by hash), and the forced snapshots go group by group.
//
// It only talks HTTP to the targets it is given; it never reads the
// environment, never prints, and never decides whether a soak passed (that is
// the gates' job): it returns counts and latencies.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lanectl/lanectl/node/replica/status"
)

// Defaults for Config fields left zero.
const (
	DefaultRate          = 50
	DefaultValueSize     = 1024
	DefaultKeys          = 10000
	DefaultConcurrency   = 64
	DefaultWriteTimeout  = 10 * time.Second
	DefaultProgressEvery = 5 * time.Second
)

// Config describes a load run.
type Config struct {
	// Targets are replica HTTP base URLs (http://host:port). Writes are
	// spread over them round-robin; followers forward to the leader.
	Targets []string
	// Rate is writes per second.
	Rate float64
	// ValueSize is the size of each written value in bytes.
	ValueSize int
	// Keys is the size of the key space writes cycle through; the store
	// holds about Keys*ValueSize bytes, which is also the snapshot size.
	Keys int
	// Duration ends the run; zero runs until ctx is cancelled.
	Duration time.Duration
	// SnapshotEvery forces a snapshot transfer this often; zero never.
	// Each one is of the next raft group in turn, from that group's leader
	// to its next follower.
	SnapshotEvery time.Duration
	// Concurrency bounds writes in flight.
	Concurrency  int
	WriteTimeout time.Duration
	// Progress, when set, is called every ProgressEvery from the run's
	// goroutine with the counts so far.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Client defaults to a private client whose idle connections are
	// closed when Run returns.
	Client *http.Client
}

// Progress is a running total.
type Progress struct {
	Elapsed         time.Duration
	WritesOK        int64
	WritesFailed    int64
	SnapshotsForced int64
	SnapshotsFailed int64
	// P99 is over the whole run so far.
	P99 time.Duration
}

// Result summarises a run.
type Result struct {
	Elapsed         time.Duration `json:"elapsed_seconds"`
	Targets         []string      `json:"targets"`
	Rate            float64       `json:"rate"`
	WritesOK        int64         `json:"writes_ok"`
	WritesFailed    int64         `json:"writes_failed"`
	P50             time.Duration `json:"p50_seconds"`
	P99             time.Duration `json:"p99_seconds"`
	Max             time.Duration `json:"max_seconds"`
	SnapshotsForced int64         `json:"snapshots_forced"`
	SnapshotsFailed int64         `json:"snapshots_failed"`
	// Errors counts failures by reason (HTTP status line or error class).
	Errors map[string]int64 `json:"errors,omitempty"`
	// LastSnapshotError is the most recent reason a forced snapshot failed.
	LastSnapshotError string `json:"last_snapshot_error,omitempty"`
}

// MarshalJSON writes durations as seconds.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Elapsed float64 `json:"elapsed_seconds"`
		P50     float64 `json:"p50_seconds"`
		P99     float64 `json:"p99_seconds"`
		Max     float64 `json:"max_seconds"`
	}{plain(r), r.Elapsed.Seconds(), r.P50.Seconds(), r.P99.Seconds(), r.Max.Seconds()})
}

func (c *Config) validate() error {
	if len(c.Targets) == 0 {
		return errors.New("no targets")
	}
	for i, t := range c.Targets {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("target %d %q: want http://HOST:PORT", i+1, t)
		}
		c.Targets[i] = strings.TrimRight(t, "/")
	}
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		return fmt.Errorf("rate %v: want a positive number of writes per second", c.Rate)
	}
	if c.ValueSize < 0 || c.Keys < 0 || c.Concurrency < 0 || c.Duration < 0 || c.SnapshotEvery < 0 {
		return errors.New("value size, keys, concurrency, duration and snapshot interval must not be negative")
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.ValueSize == 0 {
		c.ValueSize = DefaultValueSize
	}
	if c.Keys == 0 {
		c.Keys = DefaultKeys
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	return nil
}

// run holds one run's shared counters.
type run struct {
	cfg    Config
	client *http.Client

	mu       sync.Mutex
	ok       int64
	failed   int64
	errs     map[string]int64
	lat      histogram
	snapOK   int64
	snapFail int64
	snapErr  string
}

// Run drives load until Duration has passed or ctx is cancelled, then waits
// for writes in flight and returns the summary. Cancelling ctx is a normal
// end, not an error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, fmt.Errorf("load config: %w", err)
	}
	r := &run{cfg: cfg, client: cfg.Client, errs: make(map[string]int64)}
	if r.client == nil {
		tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency}
		defer tr.CloseIdleConnections()
		r.client = &http.Client{Transport: tr}
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	start := time.Now()
	var wg sync.WaitGroup
	if cfg.SnapshotEvery > 0 {
		wg.Go(func() { r.forceLoop(ctx) })
	}
	if cfg.Progress != nil {
		wg.Go(func() { r.progressLoop(ctx, start) })
	}
	r.writeLoop(ctx)
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	return Result{
		Elapsed:           time.Since(start),
		Targets:           cfg.Targets,
		Rate:              cfg.Rate,
		WritesOK:          r.ok,
		WritesFailed:      r.failed,
		P50:               r.lat.quantile(0.50),
		P99:               r.lat.quantile(0.99),
		Max:               r.lat.max,
		SnapshotsForced:   r.snapOK,
		SnapshotsFailed:   r.snapFail,
		Errors:            r.errs,
		LastSnapshotError: r.snapErr,
	}, nil
}

func (r *run) writeLoop(ctx context.Context) {
	burst := max(1, int(r.cfg.Rate/10))
	lim := rate.NewLimiter(rate.Limit(r.cfg.Rate), burst)
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	value := bytes.Repeat([]byte("lanectl-"), r.cfg.ValueSize/8+1)[:r.cfg.ValueSize]
	for seq := 0; ; seq++ {
		if lim.Wait(ctx) != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		target := r.cfg.Targets[seq%len(r.cfg.Targets)]
		key := fmt.Sprintf("k%08d", seq%r.cfg.Keys)
		wg.Go(func() {
			defer func() { <-sem }()
			r.write(ctx, target, key, value)
		})
	}
}

func (r *run) write(ctx context.Context, target, key string, value []byte) {
	// A write already sent is allowed to finish when the run ends, so the
	// summary counts what the cluster really did.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.WriteTimeout)
	defer cancel()
	start := time.Now()
	reason := r.put(wctx, target+"/kv/"+key, value)
	took := time.Since(start)
	r.mu.Lock()
	defer r.mu.Unlock()
	if reason != "" {
		r.failed++
		r.errs[reason]++
		return
	}
	r.ok++
	r.lat.observe(took)
}

// put returns "" on success, else a short reason for the error table.
func (r *run) put(ctx context.Context, u string, value []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(value))
	if err != nil {
		return err.Error()
	}
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.Timeout() {
			return "timeout"
		}
		return "connection error"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	return ""
}

func (r *run) progressLoop(ctx context.Context, start time.Time) {
	t := time.NewTicker(r.cfg.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.mu.Lock()
			p := Progress{
				Elapsed: time.Since(start), WritesOK: r.ok, WritesFailed: r.failed,
				SnapshotsForced: r.snapOK, SnapshotsFailed: r.snapFail, P99: r.lat.quantile(0.99),
			}
			r.mu.Unlock()
			r.cfg.Progress(p)
		}
	}
}

func (r *run) forceLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.SnapshotEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.forceOnce(ctx, n)
		if err != nil && ctx.Err() != nil {
			// Cut short by the end of the run: neither forced nor failed.
			return
		}
		r.mu.Lock()
		if err != nil {
			r.snapFail++
			r.snapErr = err.Error()
		} else {
			r.snapOK++
		}
		r.mu.Unlock()
	}
}

// targetStatus is one target's /status document and the URL it came from.
type targetStatus struct {
	url string
	status.Replica
}

// forceOnce makes the n-th forced snapshot: of group n mod the group
// count, from that group's leader among the targets to its followers in
// turn.
func (r *run) forceOnce(ctx context.Context, n int) error {
	var sts []targetStatus
	groups := 1
	for _, t := range r.cfg.Targets {
		st, err := r.status(ctx, t)
		if err != nil {
			continue
		}
		sts = append(sts, st)
		groups = max(groups, len(st.Groups))
	}
	group := uint64(n % groups)
	var leader string
	var followers []string
	for _, st := range sts {
		g := st.Group
		if group < uint64(len(st.Groups)) {
			g = st.Groups[group]
		} else if group != 0 {
			continue
		}
		switch g.Role {
		case "leader":
			leader = st.url
		case "follower":
			followers = append(followers, st.ID)
		}
	}
	if leader == "" {
		return fmt.Errorf("group %d: no target is the leader", group)
	}
	if len(followers) == 0 {
		return fmt.Errorf("group %d: no follower among the targets", group)
	}
	peer := followers[(n/groups)%len(followers)]
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	u := fmt.Sprintf("%s/admin/snapshot?group=%d&peer=%s", leader, group, url.QueryEscape(peer))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("force snapshot of group %d to %s: %w", group, peer, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("force snapshot of group %d to %s: %s: %s", group, peer, resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

func (r *run) status(ctx context.Context, target string) (targetStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+"/status", nil)
	if err != nil {
		return targetStatus{}, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return targetStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return targetStatus{}, fmt.Errorf("GET %s/status: %s", target, resp.Status)
	}
	st := targetStatus{url: target}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return targetStatus{}, fmt.Errorf("decode %s/status: %w", target, err)
	}
	return st, nil
}

// histogram records latencies in log-spaced buckets 1% wide, from 1µs to
// about 20 minutes, so a 24-hour run costs a fixed ~17 KiB and quantiles
// are within 1%.
type histogram struct {
	counts [2100]int64
	total  int64
	max    time.Duration
}

const histGrowth = 1.01

func (h *histogram) observe(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	i := 0
	if us > 1 {
		i = min(int(math.Log(us)/math.Log(histGrowth))+1, len(h.counts)-1)
	}
	h.counts[i]++
	h.total++
	h.max = max(h.max, d)
}

// quantile returns the upper bound of the bucket holding quantile q, capped
// at the largest value seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.total)))
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			upper := time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
			return min(upper, h.max)
		}
	}
	return h.max
}
