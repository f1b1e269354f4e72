package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// usageError is a mistake on the command line; the message points at --help.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e usageError) Error() string {
	return fmt.Sprintf("%v (see '%s --help')", e.err, e.cmd.CommandPath())
}

func (e usageError) Unwrap() error { return e.err }

// usageErrorf reports a bad combination of flags or arguments.
func usageErrorf(cmd *cobra.Command, format string, args ...any) error {
	return usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}
