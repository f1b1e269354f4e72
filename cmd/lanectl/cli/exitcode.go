package cli

import (
	"errors"

	"github.com/lanectl/lanectl/demo"
	"github.com/lanectl/lanectl/rollout"
)

// Exit codes shared by every command that judges something.
const (
	// ExitOK is a pass, or a command that did what it was asked.
	ExitOK = 0
	// ExitFailed is a failed gate, or a rollout that refused to go on.
	ExitFailed = 1
	// ExitInconclusive is not enough data, or a soak window that is not over.
	ExitInconclusive = 2
	// ExitOperational is bad config or input, or an unreachable Prometheus or
	// SSH server.
	ExitOperational = 3
)

var (
	// ErrFailed is returned (wrapped) by a command whose verdict is a failure.
	ErrFailed = errors.New("failed")
	// ErrInconclusive is returned (wrapped) by a command that could not decide.
	ErrInconclusive = errors.New("inconclusive")
	// ErrInterrupted is returned (wrapped) by a command stopped (Ctrl-C)
	// before it decided anything.
	ErrInterrupted = errors.New("interrupted")
)

// ExitCode maps an error returned by a command to the process exit code:
// the one place where the verdicts of every package become exit codes.
// Anything that is not a verdict is an operational error.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrFailed),
		errors.Is(err, rollout.ErrSoakFailed),
		errors.Is(err, rollout.ErrVerifyFailed),
		errors.Is(err, rollout.ErrRollbackFailed),
		errors.Is(err, rollout.ErrLocked),
		errors.Is(err, demo.ErrRefused):
		return ExitFailed
	case errors.Is(err, ErrInconclusive),
		errors.Is(err, ErrInterrupted),
		errors.Is(err, rollout.ErrSoakPending),
		errors.Is(err, demo.ErrUndecided):
		return ExitInconclusive
	default:
		return ExitOperational
	}
}
