// Command lanectl rolls the four-lane raft dispatcher out to an elastickv
// fleet replica by replica, deciding each step from measured soak gates.
package main

import (
	"os"

	"github.com/lanectl/lanectl/cmd/lanectl/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
