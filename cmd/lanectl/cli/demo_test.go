package cli

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/lanectl/lanectl/gates"
)

// On a terminal the progress line is redrawn in place and cleared before
// any other line; in a log every progress report is its own timestamped
// line.
func TestLiveWriter(t *testing.T) {
	tests := []struct {
		name string
		tty  bool
		want *regexp.Regexp
	}{
		{"terminal", true, regexp.MustCompile(`^step one\n\r\x1b\[Kprogress 1\r\x1b\[Kprogress 2\r\x1b\[Kstep two\n$`)},
		{"log", false, regexp.MustCompile(`^step one\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ progress 1\n\S+ progress 2\nstep two\n$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			w := &liveWriter{w: &b, tty: tt.tty}
			_, _ = w.Write([]byte("step one\n"))
			w.progress("progress 1")
			w.progress("progress 2")
			_, _ = w.Write([]byte("step two\n"))
			if !tt.want.Match(b.Bytes()) {
				t.Errorf("got %q, want %s", b.String(), tt.want)
			}
		})
	}
}

// A passing soak's table drops the rows no gate judged; any other verdict
// keeps all of them as evidence.
func TestJudgedRows(t *testing.T) {
	res := func(v gates.Verdict) gates.Result {
		return gates.Result{Verdict: v, Gates: []gates.GateResult{{
			Name: "heartbeat_drops",
			Values: []gates.ReplicaValue{
				{Replica: "n1", Role: "canary", Verdict: gates.Pass},
				{Replica: "n2", Role: "baseline"},
			},
		}}}
	}
	tests := []struct {
		verdict gates.Verdict
		want    int
	}{
		{gates.Pass, 1},
		{gates.Fail, 2},
		{gates.Inconclusive, 2},
	}
	for _, tt := range tests {
		in := res(tt.verdict)
		got := judgedRows(in)
		if n := len(got.Gates[0].Values); n != tt.want {
			t.Errorf("%s: got %d rows, want %d", tt.verdict, n, tt.want)
		}
		if len(in.Gates[0].Values) != 2 {
			t.Errorf("%s: the input result was modified", tt.verdict)
		}
	}
}
