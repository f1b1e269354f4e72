package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/node/holbench"
)

func TestBenchHOLCommand(t *testing.T) {
	// Small, quick runs of the real direct scenario. The ratio targets are
	// set so the verdict does not depend on how fast this machine is.
	small := []string{"bench", "hol", "--scenario", "direct", "--snapshot-mib", "2", "--link-mibps", "16"}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantErrOut []string
	}{
		{
			name:     "table and pass",
			args:     append(small, "--min-ratio", "0"),
			wantCode: ExitOK,
			wantOut: []string{
				"head-of-line benchmark (direct): 2 MiB snapshot over a 16 MiB/s link in 16 KiB chunks",
				"| MsgApp lane ", "| normal ", "| replication ",
				"| MsgApp delivery p99 ", "| heartbeat queue wait max ", "| elections ",
				"pass: four-lane MsgApp delivery p99 is ",
			},
		},
		{
			name:     "target missed",
			args:     append(small, "--min-ratio", "1e12"),
			wantCode: ExitFailed,
			wantOut:  []string{"fail: four-lane MsgApp delivery p99 is only "},
			wantErrOut: []string{
				"lanectl: bench hol: fail: four-lane MsgApp delivery p99 is only ",
			},
		},
		{
			name:       "too few appends to compare",
			args:       append(small, "--append-interval", "1h"),
			wantCode:   ExitInconclusive,
			wantOut:    []string{"inconclusive: only 0 MsgApp(s) reached the follower during the legacy transfer"},
			wantErrOut: []string{"inconclusive"},
		},
		{
			name:       "unknown scenario",
			args:       []string{"bench", "hol", "--scenario", "moon"},
			wantCode:   ExitOperational,
			wantErrOut: []string{`invalid --scenario "moon": want direct or cluster (see 'lanectl bench hol --help')`},
		},
		{
			name:       "bad group count",
			args:       []string{"bench", "hol", "--groups", "0"},
			wantCode:   ExitOperational,
			wantErrOut: []string{"invalid --groups 0: want 1 to 256"},
		},
		{
			name:       "zero link rate",
			args:       []string{"bench", "hol", "--link-mibps", "0"},
			wantCode:   ExitOperational,
			wantErrOut: []string{"--snapshot-mib, --link-mibps and --link-chunk-kib must be > 0"},
		},
		{
			name:       "bad output format",
			args:       []string{"bench", "hol", "-o", "yaml"},
			wantCode:   ExitOperational,
			wantErrOut: []string{`invalid -o "yaml"`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(tc.args, strings.NewReader(""), &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q; got:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantErrOut {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q; got:\n%s", w, errOut.String())
				}
			}
		})
	}
}

func TestBenchHOLJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main([]string{"bench", "hol", "--scenario", "direct", "--snapshot-mib", "2", "--link-mibps", "16", "--min-ratio", "0", "-o", "json"},
		strings.NewReader(""), &out, &errOut)
	if code != ExitOK {
		t.Fatalf("exit code %d, want 0; stderr:\n%s", code, errOut.String())
	}
	var doc struct {
		Scenario string `json:"scenario"`
		Legacy   struct {
			Mode   string `json:"mode"`
			Append struct {
				Lane     string `json:"lane"`
				Delivery struct {
					Count int   `json:"count"`
					P99   int64 `json:"p99_ns"`
				} `json:"delivery"`
			} `json:"append"`
		} `json:"legacy"`
		FourLane struct {
			Mode string `json:"mode"`
		} `json:"four_lane"`
		Ratio   *float64 `json:"append_p99_ratio"`
		Verdict string   `json:"verdict"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out.String())
	}
	if doc.Scenario != "direct" || doc.Legacy.Mode != "legacy" || doc.FourLane.Mode != "four-lane" {
		t.Errorf("got scenario %q modes %q/%q, want direct legacy/four-lane", doc.Scenario, doc.Legacy.Mode, doc.FourLane.Mode)
	}
	if doc.Legacy.Append.Lane != "normal" || doc.Legacy.Append.Delivery.Count == 0 || doc.Legacy.Append.Delivery.P99 <= 0 {
		t.Errorf("legacy append %+v, want lane normal with measured deliveries", doc.Legacy.Append)
	}
	if doc.Ratio == nil || !strings.HasPrefix(doc.Verdict, "pass: ") {
		t.Errorf("ratio %v verdict %q, want a ratio and a pass", doc.Ratio, doc.Verdict)
	}
}

func TestHOLVerdict(t *testing.T) {
	withAppends := func(n int, p99 time.Duration) holbench.Traffic {
		return holbench.Traffic{Delivery: holbench.Latency{Count: n, P50: p99 / 2, P99: p99, Max: p99}}
	}
	tests := []struct {
		name        string
		legacy      holbench.ModeResult
		fourLane    holbench.ModeResult
		wantVerdict string
		wantErr     error
	}{
		{"pass", holbench.ModeResult{Append: withAppends(100, time.Second)}, holbench.ModeResult{Append: withAppends(100, time.Millisecond)},
			"pass: four-lane MsgApp delivery p99 is 1000x better than legacy (target >= 20x); no election in the four-lane run", nil},
		{"ratio too small", holbench.ModeResult{Append: withAppends(100, 10*time.Millisecond)}, holbench.ModeResult{Append: withAppends(100, time.Millisecond)},
			"fail: four-lane MsgApp delivery p99 is only 10x better than legacy (target >= 20x)", ErrFailed},
		{"election in four-lane", holbench.ModeResult{Append: withAppends(100, time.Second)}, holbench.ModeResult{Append: withAppends(100, time.Millisecond), Elections: 2},
			"fail: 2 election(s) in the four-lane run (target 0)", ErrFailed},
		{"too few samples", holbench.ModeResult{Mode: "legacy", Append: withAppends(3, time.Second)}, holbench.ModeResult{Append: withAppends(100, time.Millisecond)},
			"inconclusive: only 3 MsgApp(s) reached the follower during the legacy transfer (want >= 20 to compare p99)", ErrInconclusive},
		{"election beats too few samples", holbench.ModeResult{Append: withAppends(0, 0)}, holbench.ModeResult{Append: withAppends(0, 0), Elections: 1},
			"fail: 1 election(s) in the four-lane run (target 0)", ErrFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := holVerdict(holbench.Report{Legacy: tc.legacy, FourLane: tc.fourLane}, 20)
			if got != tc.wantVerdict {
				t.Errorf("got verdict %q, want %q", got, tc.wantVerdict)
			}
			if ExitCode(err) != ExitCode(tc.wantErr) {
				t.Errorf("got error %v (exit %d), want exit %d", err, ExitCode(err), ExitCode(tc.wantErr))
			}
		})
	}
}
