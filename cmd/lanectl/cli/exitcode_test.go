package cli

import (
	"errors"
	"fmt"
	"testing"

	"github.com/lanectl/lanectl/demo"
	"github.com/lanectl/lanectl/rollout"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{fmt.Errorf("soak of n2 %w: drops", ErrFailed), ExitFailed},
		{fmt.Errorf("x: %w", rollout.ErrSoakFailed), ExitFailed},
		{fmt.Errorf("x: %w: y", rollout.ErrVerifyFailed), ExitFailed},
		{fmt.Errorf("x: %w", rollout.ErrRollbackFailed), ExitFailed},
		{fmt.Errorf("x: %w", rollout.ErrLocked), ExitFailed},
		{fmt.Errorf("x: %w", demo.ErrRefused), ExitFailed},
		{fmt.Errorf("x %w", ErrInconclusive), ExitInconclusive},
		{fmt.Errorf("x: %w", rollout.ErrSoakPending), ExitInconclusive},
		{fmt.Errorf("x: %w", demo.ErrUndecided), ExitInconclusive},
		{fmt.Errorf("demo %w: y", ErrInterrupted), ExitInconclusive},
		{fmt.Errorf("x: %w", rollout.ErrUnknownReplica), ExitOperational},
		{errors.New("connection refused"), ExitOperational},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
