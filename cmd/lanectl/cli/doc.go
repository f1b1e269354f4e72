// Package cli is lanectl's command-line front end: cobra commands that turn
// flags into option structs, call the library packages (lanes, node, query,
// gates, rollout, dashboards) and print tables or JSON.
//
// Each command lives in its own file with an options struct, a NewCmdX
// constructor and a runX function that tests call directly. Commands write
// only to the streams they are given and return errors; Main maps errors to
// the exit codes of the README in one place (exitcode.go). Nothing in this
// package calls os.Exit.
package cli
