package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"

	"github.com/lanectl/lanectl/query"
)

// TestEngineWarningsAreNotInfos: the engine's info annotations are not
// warnings, because a warning makes a passing gate inconclusive; its real
// warnings still are.
func TestEngineWarningsAreNotInfos(t *testing.T) {
	st := promqltest.LoadedStorage(t, "load 1m\n  lanes_gauge{node_id=\"n1\"} 0+1x10\n  ratio{node_id=\"n1\"} 0.5x10\n")
	e := query.NewEngine(st, nil)
	t.Cleanup(func() { _ = e.Close() })
	at := time.Unix(0, 0).Add(10 * time.Minute)
	tests := []struct {
		expr      string
		wantWarns int
	}{
		// Info: "metric might not be a counter, name does not end in _total".
		{`rate(lanes_gauge[5m])`, 0},
		// Warning: a quantile outside [0, 1].
		{`quantile_over_time(2, ratio[5m])`, 1},
	}
	for _, tt := range tests {
		_, warns, err := e.Query(context.Background(), tt.expr, at)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		if len(warns) != tt.wantWarns {
			t.Errorf("%s: got warnings %q, want %d", tt.expr, warns, tt.wantWarns)
		}
	}
}
