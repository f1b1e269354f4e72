package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
)

// Engine evaluates PromQL with the upstream promql engine over any
// storage.Queryable: the embedded store's TSDB, or a test's storage. Its
// settings match a stock Prometheus server (5m lookback, 1m default subquery
// step, @ and negative offsets allowed) so answers agree with one.
type Engine struct {
	engine *promql.Engine
	store  storage.Queryable
}

// DefaultLookback is Prometheus's default --query.lookback-delta.
const DefaultLookback = 5 * time.Minute

// NewEngine returns a querier over store. logger may be nil.
func NewEngine(store storage.Queryable, logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{
		store: store,
		engine: promql.NewEngine(promql.EngineOpts{
			Logger:                   logger,
			MaxSamples:               50_000_000,
			Timeout:                  2 * time.Minute,
			LookbackDelta:            DefaultLookback,
			NoStepSubqueryIntervalFn: func(int64) int64 { return time.Minute.Milliseconds() },
			EnableAtModifier:         true,
			EnableNegativeOffset:     true,
			Parser:                   parser.NewParser(parser.Options{}),
		}),
	}
}

// Query evaluates expr as an instant query at time at.
func (e *Engine) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	q, err := e.engine.NewInstantQuery(ctx, e.store, nil, expr, at)
	if err != nil {
		return nil, nil, classifyEngineErr(expr, err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	// Only warnings are returned: an info annotation ("metric might not
	// be a counter") says nothing about whether the data is complete, and
	// Prometheus's API keeps infos apart from warnings the same way.
	w, _ := res.Warnings.AsStrings(expr, 0, 0)
	warns := Warnings(w)
	if res.Err != nil {
		return nil, warns, classifyEngineErr(expr, res.Err)
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make(Vector, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				return nil, warns, fmt.Errorf("query %q: %w: native histogram sample for %s", expr, ErrBadResponse, s.Metric)
			}
			out = append(out, Sample{Labels: s.Metric.Map(), Value: s.F})
		}
		return out, warns, nil
	case promql.Scalar:
		return Vector{{Labels: map[string]string{}, Value: v.V}}, warns, nil
	default:
		return nil, warns, fmt.Errorf("query %q: %w: result is a %s, want an instant vector", expr, ErrBadResponse, res.Value.Type())
	}
}

// Close stops the engine. The store is the caller's to close.
func (e *Engine) Close() error { return e.engine.Close() }

func classifyEngineErr(expr string, err error) error {
	var (
		perrs    parser.ParseErrors
		perr     *parser.ParseErr
		timeout  promql.ErrQueryTimeout
		canceled promql.ErrQueryCanceled
	)
	switch {
	case errors.As(err, &perrs), errors.As(err, &perr):
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("query %q: %w: %w", expr, ErrTimeout, err)
	case errors.As(err, &canceled), errors.Is(err, context.Canceled):
		return fmt.Errorf("query %q: %w", expr, err)
	case isStorageErr(err):
		return fmt.Errorf("query %q: %w: %w", expr, ErrBadResponse, err)
	default:
		// Everything else is an execution error caused by the query
		// meeting the data, e.g. many-to-many matching.
		return fmt.Errorf("query %q: %w: %w", expr, ErrBadQuery, err)
	}
}

func isStorageErr(err error) bool {
	var se promql.ErrStorage
	return errors.As(err, &se)
}
