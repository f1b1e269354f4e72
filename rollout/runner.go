package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Runner runs one remote command on one replica; SSH in production, a local
// runner in the demo and in tests of the logic above it.
type Runner interface {
	Run(ctx context.Context, r Replica, command string) (Output, error)
}

// Describer is implemented by runners that can say, for the action log,
// how a command reaches a replica ("over ssh root@10.0.0.1:22").
type Describer interface {
	Describe(r Replica) string
}

// describe says how runner reaches r, for the action log.
func describe(runner Runner, r Replica) string {
	if d, ok := runner.(Describer); ok {
		return d.Describe(r)
	}
	return "on " + r.Name
}

// Checker is implemented by runners that can prove a replica is reachable
// and trusted without running anything on it. advance checks every replica
// it is about to touch before it journals a step, so an unreachable host or
// a changed host key leaves the journal unchanged.
type Checker interface {
	Check(ctx context.Context, r Replica) error
}

// Output is what a remote command printed and how it ended.
type Output struct {
	Stdout string
	Stderr string
	// ExitStatus is the command's exit status, -1 when it did not exit (a
	// timeout, a lost connection).
	ExitStatus int
	Duration   time.Duration
}

// ErrCommandFailed is returned (wrapped in a *CommandError) when a remote
// command ran and exited non-zero, or was killed by its timeout.
var ErrCommandFailed = errors.New("remote command failed")

// ErrCommandTimeout is returned (wrapped in a *CommandError, together with
// ErrCommandFailed) when a command did not end within its timeout and was
// killed.
var ErrCommandTimeout = errors.New("remote command timed out")

// CommandError says which command failed on which replica, with its exit
// status and the tail of its stderr.
type CommandError struct {
	Replica string
	Command string
	Output  Output
	// Reason is "exit status N" or why it never exited.
	Reason string
	// TimedOut is true when the command was killed by its timeout.
	TimedOut bool
}

// Error names the replica, the command, how it ended and the tail of its
// stderr.
func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%s: %q: %s", e.Replica, e.Command, e.Reason)
	if tail := lastLines(e.Output.Stderr, 5); tail != "" {
		msg += ": stderr: " + tail
	}
	return msg
}

// Unwrap returns ErrCommandFailed, and ErrCommandTimeout too for a command
// killed by its timeout.
func (e *CommandError) Unwrap() []error {
	if e.TimedOut {
		return []error{ErrCommandFailed, ErrCommandTimeout}
	}
	return []error{ErrCommandFailed}
}

// lastLines keeps the end of a command's stderr, where the error usually is.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

// maxOutput bounds what is kept of a command's stdout and stderr each.
const maxOutput = 64 << 10

// boundedBuffer keeps the first maxOutput bytes written and drops the rest,
// so a chatty command cannot exhaust memory.
type boundedBuffer struct {
	bytes.Buffer
	dropped bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room < len(p) {
		b.dropped = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

func (b *boundedBuffer) String() string {
	if b.dropped {
		return b.Buffer.String() + "\n[output truncated]"
	}
	return b.Buffer.String()
}

// LocalRunner runs commands with /bin/sh on this machine, for replicas that
// live here: the demo, and tests of the logic above the runner. Env is added
// to each command's environment.
type LocalRunner struct {
	Timeout time.Duration
	Env     []string
}

// Describe says that commands run in a local shell.
func (l LocalRunner) Describe(Replica) string { return "in a local shell" }

// Run runs command with sh -c and reports its output like the SSH runner.
// The command gets its own process group, and a timeout or cancellation
// kills the whole group, as timeout(1) does for the SSH runner.
func (l LocalRunner) Run(ctx context.Context, r Replica, command string) (Output, error) {
	if l.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.Timeout)
		defer cancel()
	}
	var stdout, stderr boundedBuffer
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = l.Env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// The command may start a service that inherits stdout/stderr; do not
	// wait for it to close them.
	cmd.WaitDelay = time.Second
	start := time.Now()
	err := cmd.Run()
	out := Output{Stdout: stdout.String(), Stderr: stderr.String(), ExitStatus: -1, Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		out.ExitStatus = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil, errors.Is(err, exec.ErrWaitDelay) && out.ExitStatus == 0:
		return out, nil
	case ctx.Err() != nil:
		return out, &CommandError{Replica: r.Name, Command: command, Output: out, TimedOut: errors.Is(ctx.Err(), context.DeadlineExceeded), Reason: fmt.Sprintf("killed after %v: %v", out.Duration.Round(time.Millisecond), ctx.Err())}
	case out.ExitStatus > 0:
		return out, &CommandError{Replica: r.Name, Command: command, Output: out, Reason: fmt.Sprintf("exit status %d", out.ExitStatus)}
	default:
		return out, fmt.Errorf("run on %s: %w", r.Name, err)
	}
}
