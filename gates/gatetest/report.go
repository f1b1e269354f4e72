package gatetest

import (
	"fmt"
	"io"
)

// Report writes one line per test, and under a failed test one line per
// unmet expectation, as "want …, got …".
func Report(w io.Writer, rs []Result) {
	for _, r := range rs {
		if r.Passed() {
			fmt.Fprintf(w, "  PASS  %s:%d: %s\n", r.File, r.Line, r.Test)
			continue
		}
		fmt.Fprintf(w, "  FAIL  %s:%d: %s\n", r.File, r.Line, r.Test)
		for _, d := range r.Diffs {
			fmt.Fprintf(w, "        %s\n", d)
		}
	}
}
