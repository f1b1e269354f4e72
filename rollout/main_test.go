package rollout

import (
	"fmt"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func fmtAny(v any) string { return fmt.Sprintf("%v", v) }
