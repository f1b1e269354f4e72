package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// IOStreams are the streams a command reads and writes. Tests pass buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// IsTTY is true when Out is a terminal: commands then draw live progress
	// instead of timestamped lines, and tables fit the terminal's width.
	IsTTY bool
}

// Main runs lanectl with the given arguments and streams and returns the
// process exit code. SIGINT and SIGTERM cancel the command's context; a
// command that judges something then reports what it knows so far.
func Main(args []string, in io.Reader, out, errOut io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	streams := &IOStreams{In: in, Out: out, ErrOut: errOut}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		streams.IsTTY = true
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			streams.Out = terminal{Writer: out, cols: cols}
		}
	}
	root := NewCmdRoot(streams, os.Getenv)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(errOut, "lanectl: %v\n", err)
	}
	return ExitCode(err)
}
