package cli

import (
	"errors"
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
)

// ExitCode maps an error returned by a command to the process exit code.
// Anything that is not a verdict is an operational error.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrFailed):
		return ExitFailed
	case errors.Is(err, ErrInconclusive):
		return ExitInconclusive
	default:
		return ExitOperational
	}
}
