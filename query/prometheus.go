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

// Prometheus answers queries through the Prometheus HTTP API. It works
// unchanged against API-compatible servers (Thanos Query, Mimir,
// VictoriaMetrics), which is how a user scales past one Prometheus.
type Prometheus struct {
	url string
	api v1.API
}

// NewPrometheus returns a querier for the server at rawURL (for example
// http://prometheus:9090, or a path prefix such as
// http://mimir/prometheus). cfg is the http_config block users already
// write in prometheus.yml: bearer token or file, basic auth, TLS, proxy.
func NewPrometheus(rawURL string, cfg config.HTTPClientConfig) (*Prometheus, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("prometheus url %q: %w", rawURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("prometheus url %q: scheme must be http or https", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("prometheus url %q: no host", rawURL)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus http_config: %w", err)
	}
	rt, err := config.NewRoundTripperFromConfig(cfg, "lanectl")
	if err != nil {
		return nil, fmt.Errorf("prometheus http_config: %w", err)
	}
	c, err := api.NewClient(api.Config{Address: rawURL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", rawURL, err)
	}
	return &Prometheus{url: rawURL, api: v1.NewAPI(c)}, nil
}

// URL is the server address the querier was built with.
func (p *Prometheus) URL() string { return p.url }

// Query evaluates expr as an instant query at time at. The context's
// deadline, if any, is also sent as the query timeout so the server stops
// working when the caller stops waiting.
func (p *Prometheus) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	var opts []v1.Option
	if dl, ok := ctx.Deadline(); ok {
		// Prometheus parses the timeout as one of its own durations,
		// which take whole units: "59s", not "59.9996s".
		if d := time.Until(dl).Truncate(time.Second); d >= time.Second {
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

// classify turns a client error into one of the package's sentinel errors,
// keeping the server's own words.
func (p *Prometheus) classify(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
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
