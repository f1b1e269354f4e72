package gates

import "context"

// Layouts the benchmark compares, and evaluation in a chosen one.
const (
	LayoutGrouped    = layoutGrouped
	LayoutPerReplica = layoutPerReplica
)

// Layout is how a gate becomes queries.
type Layout = layout

// EvaluateLayout is Evaluate with the layout forced.
func EvaluateLayout(ctx context.Context, q Querier, set Set, req Request, l Layout) (Result, error) {
	return evaluate(ctx, q, set, req, l)
}
