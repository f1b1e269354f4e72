package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/lanectl/lanectl/cmd/lanectl/cli"
)

// TestMain lets the scripts run lanectl as a command in the same binary.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"lanectl": func() { os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs testdata/script/*.txtar: each is a CLI session with its
// exact output and exit code.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                soakScriptCmds(),
		UpdateScripts:       os.Getenv("LANECTL_UPDATE_SCRIPTS") == "1",
	})
}
