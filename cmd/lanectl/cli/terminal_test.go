package cli

import (
	"strings"
	"testing"
)

func TestFitColumns(t *testing.T) {
	header := []string{"GATE", "VERDICT", "REASON"}
	rows := [][]string{
		{"heartbeat_drops", "fail", "canary n2: 3 heartbeat-lane drops in 24h, limit 0"},
		{"coverage", "pass", "metrics present for 100% of the window"},
	}
	tests := []struct {
		name string
		cols int
		// want is nil when the table fits as it is; otherwise the widths.
		want map[int]int
	}{
		{"fits as it is", 200, nil},
		{"not a terminal", 0, nil},
		// natural: 17, 9, 52; borders 4. At 60 columns the 56 left go to
		// the narrow columns in full and the rest to REASON.
		{"the wide column wraps", 60, map[int]int{0: 17, 1: 9, 2: 30}},
		// The longest words need 17 + 9 + 15 (heartbeat-lane) + 4 borders:
		// below that the table overflows rather than cut a word.
		{"words never cut", 30, map[int]int{0: 17, 1: 9, 2: 16}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fitColumns(tt.cols, header, rows)
			if tt.want == nil {
				if got != nil {
					t.Fatalf("got %v, want nil (no fitting)", got)
				}
				return
			}
			for i, w := range tt.want {
				if got[i] != w {
					t.Errorf("column %d: got width %d, want %d (all: %v)", i, got[i], w, got)
				}
			}
			if tt.cols >= 45 && tableWidth(got) > tt.cols {
				t.Errorf("table is %d wide, terminal %d", tableWidth(got), tt.cols)
			}
		})
	}
}

func TestWrapParagraph(t *testing.T) {
	got := wrapParagraph("coverage: enough data: every replica exported the metrics", 24, "  ")
	want := "coverage: enough data:\n  every replica exported\n  the metrics"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	for _, l := range strings.Split(got, "\n") {
		if len(l) > 24 {
			t.Errorf("line %q is longer than 24", l)
		}
	}
}
