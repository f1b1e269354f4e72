package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/demo"
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

// The summary's head-of-line line names the follower and both layouts'
// p99 with their ratio, and says plainly when one layout has nothing to
// compare.
func TestWriteTransferSummary(t *testing.T) {
	sec := func(s float64) *float64 { return &s }
	base := demo.TransferSummary{
		Follower: "n3", Group: 0, Groups: 4, LinkBytesPerSecond: 8 << 20, Forced: 9, Failed: 1, Abandoned: 1,
		Legacy:   demo.TransferLayout{Layout: "legacy", Transfers: 4, SnapshotBytes: 12 << 20, TransferP50: sec(1.5), Appends: 900, DeliveryP50: sec(0.9), DeliveryP99: sec(2.5), DeliveryMax: sec(2.6)},
		FourLane: demo.TransferLayout{Layout: "four-lane", Transfers: 5, SnapshotBytes: 12 << 20, TransferP50: sec(1.5), Appends: 600, DeliveryP50: sec(0.0015), DeliveryP99: sec(0.004), DeliveryMax: sec(0.005)},
		Ratio:    sec(625),
	}
	oneSided := base
	oneSided.FourLane = demo.TransferLayout{Layout: "four-lane"}
	oneSided.Ratio = nil
	tests := []struct {
		name string
		in   demo.TransferSummary
		want []string
	}{
		{"both layouts", base, []string{
			"group 0's snapshots from its leader to n3 over a shaped 8 MiB/s link (9 forced, 1 failed; 1 sent never arrived",
			"the other 3 groups' appends to n3",
			"| legacy          | 4         | 12 MiB   | 1.5s         | 900                  | 900ms        | 2.5s | 2.6s | 0    |",
			"other groups' MsgApp delivery p99 to n3 during snapshot transfers: legacy 2.5s vs four-lane 4ms (625×)\n",
		}},
		{"four-lane missing", oneSided, []string{
			"legacy 2.5s vs four-lane - (no ratio: one layout sent no appends during a transfer)",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeTransferSummary(&b, tt.in); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}
