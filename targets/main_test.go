package targets_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The tests start Prometheus processes, scrapers and test servers; all
// must be gone at the end.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
