package query

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/config"
)

// Backend names the kind of server a Remote found behind its URL.
type Backend string

// Backends a Remote tells apart.
const (
	// BackendPrometheus is Prometheus or a server that evaluates PromQL
	// with Prometheus' engine (Thanos Query, Mimir, Cortex): queries are
	// sent to it.
	BackendPrometheus Backend = "prometheus"
	// BackendVictoriaMetrics evaluates MetricsQL, not PromQL: lanectl
	// evaluates queries itself over the raw samples it exports.
	BackendVictoriaMetrics Backend = "victoriametrics"
)

// probeTimeout bounds the one request that tells the backends apart (or
// the query timeout, when shorter).
const probeTimeout = 10 * time.Second

// Remote is the querier for a metrics server given by URL: it finds out on
// its first query whether the server is VictoriaMetrics, and from then on
// answers through a VictoriaMetrics querier or a Prometheus one. This is
// the one place that decides how a remote server is read.
type Remote struct {
	url  string
	cfg  config.HTTPClientConfig
	opts []PrometheusOption

	prom *Prometheus

	mu      sync.Mutex
	backend Backend
	vm      *VictoriaMetrics
}

// NewRemote returns a querier for the server at rawURL; cfg is its
// http_config and opts its limits, whichever kind it turns out to be. It
// does not connect until the first query.
func NewRemote(rawURL string, cfg config.HTTPClientConfig, opts ...PrometheusOption) (*Remote, error) {
	p, err := NewPrometheus(rawURL, cfg, opts...)
	if err != nil {
		return nil, err
	}
	return &Remote{url: rawURL, cfg: cfg, opts: opts, prom: p}, nil
}

// URL is the server's address, with any password redacted.
func (r *Remote) URL() string { return RedactURL(r.url) }

// Backend says what the server turned out to be; empty before the first
// successful query.
func (r *Remote) Backend() Backend {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.backend
}

// Query evaluates expr at time at, the way the server's kind needs.
func (r *Remote) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	vm, err := r.detect(ctx)
	if err != nil {
		return nil, nil, err
	}
	if vm != nil {
		return vm.Query(ctx, expr, at)
	}
	return r.prom.Query(ctx, expr, at)
}

// detect asks the server once what it is; a failed probe is not
// remembered, so the next query asks again.
func (r *Remote) detect(ctx context.Context) (*VictoriaMetrics, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.backend != "" {
		return r.vm, nil
	}
	timeout := min(probeTimeout, newPrometheusLimits(r.opts).queryTimeout)
	pctx, cancel := context.WithTimeoutCause(ctx, timeout, errQueryTimeout)
	defer cancel()
	isVM, err := IsVictoriaMetrics(pctx, r.url, r.cfg)
	if err != nil {
		if errors.Is(context.Cause(pctx), errQueryTimeout) {
			return nil, fmt.Errorf("ask %s what it is: %w: no answer within the %s query timeout", r.URL(), ErrTimeout, timeout)
		}
		return nil, err
	}
	if !isVM {
		r.backend = BackendPrometheus
		return nil, nil
	}
	vm, err := NewVictoriaMetrics(r.url, r.cfg, r.opts...)
	if err != nil {
		return nil, fmt.Errorf("victoriametrics at %s: %w", r.URL(), err)
	}
	r.backend, r.vm = BackendVictoriaMetrics, vm
	return vm, nil
}

// Close releases the VictoriaMetrics engine, if one was made.
func (r *Remote) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.vm != nil {
		return r.vm.Close()
	}
	return nil
}
