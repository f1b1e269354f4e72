package gates_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The gates package starts no goroutines, but its end-to-end tests start
// replicas, scrapers and Prometheus processes; all must be gone at the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
