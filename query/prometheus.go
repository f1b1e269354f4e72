package query

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Defaults of a Prometheus querier's limits (see WithQueryTimeout and
// WithMaxAnswerBytes).
const (
	// DefaultQueryTimeout bounds each query. Gate queries over a day of
	// one fleet's series take well under a second on a healthy server;
	// one that has not answered in 30s is not going to.
	DefaultQueryTimeout = 30 * time.Second
	// DefaultMaxAnswerBytes bounds the size of one answer. A gate's answer
	// is one sample per replica, a few hundred bytes each.
	DefaultMaxAnswerBytes int64 = 64 << 20
)

// Prometheus answers queries through the Prometheus HTTP API. It works
// unchanged against API-compatible servers (Thanos Query, Mimir,
// VictoriaMetrics), which is how a user scales past one Prometheus.
//
// Every query is bounded, whoever calls it: it ends after the query
// timeout (also sent to the server as the API's timeout parameter), after
// the response header timeout if the server has not started its answer,
// and as soon as the answer grows past the size limit.
type Prometheus struct {
	url     string
	api     v1.API
	timeout time.Duration
}

// PrometheusOption changes one of a Prometheus querier's limits.
type PrometheusOption func(*prometheusLimits)

type prometheusLimits struct {
	queryTimeout  time.Duration
	headerTimeout time.Duration
	maxBytes      int64
}

// WithQueryTimeout bounds each query to d (DefaultQueryTimeout when not
// given). A shorter deadline on the caller's context still wins.
func WithQueryTimeout(d time.Duration) PrometheusOption {
	return func(l *prometheusLimits) { l.queryTimeout = d }
}

// WithResponseHeaderTimeout bounds how long the server may take to send
// its answer's headers; it defaults to the query timeout plus
// headerTimeoutMargin. Prometheus sends them once it has evaluated the
// query.
func WithResponseHeaderTimeout(d time.Duration) PrometheusOption {
	return func(l *prometheusLimits) { l.headerTimeout = d }
}

// WithMaxAnswerBytes bounds the size of one answer's body
// (DefaultMaxAnswerBytes when not given).
func WithMaxAnswerBytes(n int64) PrometheusOption {
	return func(l *prometheusLimits) { l.maxBytes = n }
}

// headerTimeoutMargin puts the default response header timeout just past
// the query timeout: the query timeout ends a query first and says so, and
// the transport's limit is the backstop for a request it did not bound.
const headerTimeoutMargin = time.Second

// newPrometheusLimits applies opts to the defaults.
func newPrometheusLimits(opts []PrometheusOption) prometheusLimits {
	lim := prometheusLimits{queryTimeout: DefaultQueryTimeout, maxBytes: DefaultMaxAnswerBytes}
	for _, o := range opts {
		o(&lim)
	}
	if lim.headerTimeout == 0 {
		lim.headerTimeout = lim.queryTimeout + headerTimeoutMargin
	}
	return lim
}

// errQueryTimeout is the cause of a query's context ending at the query
// timeout, which tells it from a deadline of the caller's.
var errQueryTimeout = errors.New("query timeout")

// NewPrometheus returns a querier for the server at rawURL (for example
// http://prometheus:9090, or a path prefix such as
// http://mimir/prometheus). cfg is the http_config block users already
// write in prometheus.yml: bearer token or file, basic auth, TLS, proxy.
// Limits not set by an option take their defaults.
func NewPrometheus(rawURL string, cfg config.HTTPClientConfig, opts ...PrometheusOption) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus url %s: %w", RedactURL(rawURL), URLErrorCause(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus url %s: scheme must be http or https", RedactURL(rawURL))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("prometheus url %s: no host", RedactURL(rawURL))
	}
	lim := newPrometheusLimits(opts)
	switch {
	case lim.queryTimeout <= 0:
		return nil, fmt.Errorf("prometheus query timeout %s: want a duration > 0", lim.queryTimeout)
	case lim.headerTimeout <= 0:
		return nil, fmt.Errorf("prometheus response header timeout %s: want a duration > 0", lim.headerTimeout)
	case lim.maxBytes <= 0:
		return nil, fmt.Errorf("prometheus answer size limit %d: want a size > 0", lim.maxBytes)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus http_config: %w", err)
	}
	rt, err := config.NewRoundTripperFromConfig(cfg, "lanectl")
	if err != nil {
		return nil, fmt.Errorf("prometheus http_config: %w", err)
	}
	rt = &boundedTransport{next: rt, headerTimeout: lim.headerTimeout, maxBytes: lim.maxBytes}
	redacted := RedactURL(rawURL)
	c, err := api.NewClient(api.Config{Address: rawURL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", redacted, err)
	}
	return &Prometheus{url: redacted, api: v1.NewAPI(c), timeout: lim.queryTimeout}, nil
}

// URL is the server address the querier was built with, its password
// replaced by "xxxxx", fit for printing.
func (p *Prometheus) URL() string { return p.url }

// Query evaluates expr as an instant query at time at, within the query
// timeout. The deadline is also sent as the query timeout so the server
// stops working when the caller stops waiting.
func (p *Prometheus) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, p.timeout, errQueryTimeout)
	defer cancel()
	var opts []v1.Option
	if dl, ok := ctx.Deadline(); ok {
		if d := serverTimeout(time.Until(dl)); d > 0 {
			opts = append(opts, v1.WithTimeout(d))
		}
	}
	val, warns, _, err := p.api.Query(ctx, expr, at, opts...)
	if err != nil {
		return nil, Warnings(warns), p.classify(ctx, err)
	}
	vec, err := toVector(val)
	if err != nil {
		return nil, Warnings(warns), fmt.Errorf("query %s: %w", p.url, err)
	}
	return vec, Warnings(warns), nil
}

// serverTimeout rounds d down to what Prometheus parses as a duration:
// whole units, so "59s" and "300ms", never "59.9996s". Zero means too
// little is left to send.
func serverTimeout(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Truncate(time.Second)
	}
	return d.Truncate(time.Millisecond)
}

// classify turns a client error into one of the package's sentinel errors,
// keeping the server's own words.
func (p *Prometheus) classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		switch {
		case errors.Is(context.Cause(ctx), errQueryTimeout):
			return fmt.Errorf("query %s: %w: no answer within the %s query timeout", p.url, ErrTimeout, p.timeout)
		case errors.Is(ctxErr, context.DeadlineExceeded):
			return fmt.Errorf("query %s: %w: %w", p.url, ErrTimeout, ctxErr)
		}
		return fmt.Errorf("query %s: %w", p.url, ctxErr)
	}
	var apiErr *v1.Error
	if errors.As(err, &apiErr) {
		msg := apiErr.Msg
		switch apiErr.Type {
		case v1.ErrBadData:
			return fmt.Errorf("query %s: %w: %s", p.url, ErrBadQuery, msg)
		case v1.ErrTimeout, v1.ErrCanceled:
			return fmt.Errorf("query %s: %w: %s", p.url, ErrTimeout, msg)
		case v1.ErrExec:
			return fmt.Errorf("query %s: %w: %s", p.url, ErrBadQuery, msg)
		default:
			if d := strings.TrimSpace(apiErr.Detail); d != "" {
				msg += ": " + firstLine(d, 200)
			}
			return fmt.Errorf("query %s: %w: %s", p.url, ErrBadResponse, msg)
		}
	}
	// net/http names the request's URL in its errors; the querier's
	// redacted one is named instead.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	// The transport's own limits: headers too late, an answer too large.
	if errors.Is(err, ErrTimeout) || errors.Is(err, ErrBadResponse) {
		return fmt.Errorf("query %s: %w", p.url, err)
	}
	// Anything else happened before an HTTP response arrived.
	return fmt.Errorf("query %s: %w: %w", p.url, ErrUnreachable, err)
}

func firstLine(s string, limit int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}

// toVector converts the API's answer. A scalar becomes a one-element vector
// with no labels; matrices and strings are not answers to a gate query.
func toVector(val model.Value) (Vector, error) {
	switch v := val.(type) {
	case model.Vector:
		out := make(Vector, 0, len(v))
		for _, s := range v {
			lbls := make(map[string]string, len(s.Metric))
			for k, lv := range s.Metric {
				lbls[string(k)] = string(lv)
			}
			out = append(out, Sample{Labels: lbls, Value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return Vector{{Labels: map[string]string{}, Value: float64(v.Value)}}, nil
	case nil:
		return nil, fmt.Errorf("%w: empty result", ErrBadResponse)
	default:
		return nil, fmt.Errorf("%w: result is a %s, want an instant vector", ErrBadResponse, val.Type())
	}
}
