package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/demo"
	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
)

// DemoOptions are the inputs of 'lanectl demo'.
type DemoOptions struct {
	Streams              *IOStreams
	Duration             time.Duration
	InjectHeartbeatDrops bool
	Output               string
}

// NewCmdDemo builds 'lanectl demo'. runF replaces runDemo in tests.
func NewCmdDemo(streams *IOStreams, runF func(*cobra.Command, *DemoOptions) error) *cobra.Command {
	opts := &DemoOptions{Streams: streams}
	cmd := &cobra.Command{
		Use:   "demo [--duration D] [--inject-heartbeat-drops] [-o table|json]",
		Short: "Watch a whole rollout on this machine: cluster, load, soaks, gates, verdicts",
		Long: `Play the whole rollout on this machine, with nothing to install:

  1. start three replicas in this process (real raft over loopback TCP,
     temporary data directories), each running four raft groups whose
     messages to a peer share that peer's lanes and connections (a
     multi-raft node), all on the legacy dispatcher layout, each reading
     its own env file; the links to and from n3 are shaped to 8 MiB/s, so a
     snapshot takes real time on its way, as across a network;
  2. run write load against every group, and every few seconds force a
     12 MiB snapshot of group 0 from its leader to n3, with every group's
     leadership on that leader;
  3. scrape their /metrics into an embedded store (no Prometheus needed);
  4. write a plan file (staging n1 -> canary n2 -> fleet n3) and walk it with
     the same code as 'lanectl advance': enable the flag on the next replica,
     verify it on the replica's own /metrics, soak it with the default gates,
     judge it, and go on. Only the runner differs from production: it runs
     the plan's env-file rewrite with sh and restarts the replica in-process
     where production runs the command over SSH and restarts the service;
  5. print a summary: drops and queue-wait p99 per lane before and after the
     flag; the other groups' MsgApp delivery to n3 during snapshot
     transfers (p99, legacy vs four-lane, measured in the replicas'
     dispatchers and transports); leader changes; every soak verdict.

--duration is the measured time: a sixth for the legacy baseline, the rest
split into the three soaks (startup and restarts add a few seconds).

--inject-heartbeat-drops makes the first replica to get the flag drop every
10th heartbeat-lane message: its soak fails the heartbeat_drops gate and the
rollout is refused, as it would be in production.

Everything is removed at the end, also on Ctrl-C. Exit code 0 when the
rollout completed, 1 when it was refused, 2 when a soak could not be decided
or the demo was interrupted, 3 when something broke.`,
		Example: `  lanectl demo
  lanectl demo --duration 30s
  lanectl demo --inject-heartbeat-drops
  lanectl demo --duration 30s -o json > summary.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if _, err := demo.TimingFor(opts.Duration); err != nil {
				return usageErrorf(cmd, "--duration: %v", err)
			}
			if runF != nil {
				return runF(cmd, opts)
			}
			return runDemo(cmd, opts)
		},
	}
	cmd.Flags().DurationVar(&opts.Duration, "duration", demo.DefaultDuration, fmt.Sprintf("measured time: legacy baseline plus three soaks (at least %s)", demo.MinDuration))
	cmd.Flags().BoolVar(&opts.InjectHeartbeatDrops, "inject-heartbeat-drops", false, "the first replica to get the flag drops heartbeats, so its soak fails")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// liveWriter keeps one redrawn progress line at the bottom of a terminal:
// any other write clears it first. Without a terminal progress is a
// timestamped line like the others.
type liveWriter struct {
	w       io.Writer
	tty     bool
	mu      sync.Mutex
	showing bool
}

func (l *liveWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	return l.w.Write(p)
}

func (l *liveWriter) clear() {
	if l.showing {
		fmt.Fprint(l.w, "\r\033[K")
		l.showing = false
	}
}

func (l *liveWriter) progress(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tty {
		fmt.Fprintf(l.w, "\r\033[K%s", line)
		l.showing = true
		return
	}
	fmt.Fprintf(l.w, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

func runDemo(cmd *cobra.Command, opts *DemoOptions) error {
	// With -o json, stdout carries only the summary; the story goes to
	// stderr.
	human := opts.Streams.Out
	tty := opts.Streams.IsTTY
	if opts.Output == outputJSON {
		human, tty = opts.Streams.ErrOut, false
	}
	out := &liveWriter{w: human, tty: tty}
	writeDemoIntro(out, opts)

	var tableErr error
	sum, err := demo.Run(cmd.Context(), demo.Config{
		Duration:             opts.Duration,
		InjectHeartbeatDrops: opts.InjectHeartbeatDrops,
		Log:                  out,
		Logger:               slog.New(slog.NewTextHandler(opts.Streams.ErrOut, &slog.HandlerOptions{Level: slog.LevelError})),
		OnStart: func(plan string, t demo.Timing) {
			fmt.Fprintf(out, "\nplan %s: stages staging [n1] -> canary [n2] -> fleet [n3], soak %s per replica (24h in production), gates' coverage step %s\n\n",
				plan, formatDuration(t.Soak), formatDuration(t.Step))
		},
		OnProgress: func(p demo.Progress) {
			out.progress(soakProgressLine(p))
		},
		OnJudged: func(j demo.Judgement) {
			fmt.Fprintf(out, "\nsoak of %s: %s (%s)\n", strings.Join(j.Replicas, ", "), j.Result.Verdict, j.Result.Reason)
			if j.NoBaseline {
				fmt.Fprintln(out, "every replica has the flag: no baseline is left, so only the gates' absolute limits applied")
			}
			if err := writeSoakGates(out, judgedRows(j.Result)); err != nil && tableErr == nil {
				tableErr = err
			}
			fmt.Fprintln(out)
		},
	})
	if sum != nil {
		if werr := writeDemoSummary(out, sum); werr != nil {
			return werr
		}
		if opts.Output == outputJSON {
			if werr := writeJSON(opts.Streams.Out, sum); werr != nil {
				return werr
			}
		}
	}
	if tableErr != nil {
		return tableErr
	}
	if err != nil && cmd.Context().Err() != nil && !errors.Is(err, demo.ErrRefused) {
		// Stopped before a verdict: nothing was decided.
		return fmt.Errorf("demo %w: %w", ErrInterrupted, err)
	}
	return err
}

func writeDemoIntro(w io.Writer, opts *DemoOptions) {
	fmt.Fprintf(w, `lanectl demo: a whole rollout of %s on this machine.
Three replicas run in this process (real raft over loopback TCP), four raft
groups each, under write load, with snapshots of one group forced over a
slow link to n3 while the others keep appending to it; an embedded store
scrapes their metrics; the plan is walked by the same code as 'lanectl
advance'. Only the runner differs: it rewrites each replica's env file with
sh and restarts the replica in-process, where production runs the same
command over SSH and restarts the service.
`, lanes.FlagEnv)
	if opts.InjectHeartbeatDrops {
		fmt.Fprintf(w, "\nFault injected: the first replica to get the flag drops every %dth heartbeat-lane\nmessage. Expect its soak to fail and advance to refuse.\n", demo.HeartbeatDropEvery)
	}
	fmt.Fprintln(w)
}

// soakProgressLine names only the gates that do not pass (yet): while the
// window is open the overall verdict is inconclusive by definition.
func soakProgressLine(p demo.Progress) string {
	total := p.Window.Duration()
	var bad []string
	for _, g := range p.Result.Gates {
		if g.Verdict != gates.Pass {
			bad = append(bad, g.Name+" "+string(g.Verdict))
		}
	}
	state := fmt.Sprintf("all %d gates pass so far", len(p.Result.Gates))
	if len(bad) > 0 {
		state = strings.Join(bad, ", ")
	}
	return fmt.Sprintf("soak of %s: %s of %s (%.0f%%): %s", strings.Join(p.Replicas, ", "),
		formatDuration(p.Elapsed), formatDuration(total), 100*p.Elapsed.Seconds()/total.Seconds(), state)
}

func writeDemoSummary(w io.Writer, s *demo.Summary) error {
	fmt.Fprintf(w, "\nsummary after %s\n\n", formatDuration(s.Elapsed))
	var rows [][]string
	for _, r := range s.Replicas {
		flag := "unknown"
		if r.FlagOn != nil {
			flag = map[bool]string{true: "on", false: "off"}[*r.FlagOn]
		}
		verdict := "-"
		for _, sk := range s.Soaks {
			for _, n := range sk.Replicas {
				if n == r.Name {
					verdict = string(sk.Verdict)
					if len(sk.Failed) > 0 {
						verdict += " (" + strings.Join(sk.Failed, ", ") + ")"
					}
				}
			}
		}
		note := ""
		if r.Name == s.Injected {
			note = "heartbeat drops injected"
		}
		rows = append(rows, []string{r.Name, r.Stage, flag, formatTime(r.EnabledAt), verdict, note})
	}
	if err := writeNotedTable(w, notedTable{header: []string{"REPLICA", "STAGE", "FLAG (ITS /metrics)", "ENABLED AT", "SOAK", "NOTE"}, rows: rows, key: []int{0}}); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nper lane: before = %s, all replicas, %s; after = %s, %s, %s\n",
		s.Before.Layout, formatDuration(s.Before.Window.Duration()), s.After.Layout, strings.Join(s.After.Replicas, ", "), formatDuration(s.After.Window.Duration()))
	rows = rows[:0]
	for _, l := range s.Lanes {
		rows = append(rows, []string{l.Lane, rateCell(l.SentRateBefore), rateCell(l.SentRateAfter), countCell(l.DropsBefore), countCell(l.DropsAfter), latencyCell(l.QueueWaitBefore), latencyCell(l.QueueWaitAfter)})
	}
	if err := writeTable(w, []string{"LANE", "SENT/S BEFORE", "AFTER", "DROPS BEFORE", "DROPS AFTER", "QUEUE WAIT P99 BEFORE", "AFTER"}, rows); err != nil {
		return err
	}
	if err := writeTransferSummary(w, s.Transfers); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nleader changes (most seen by one replica): %g before, %g after, %g over the whole demo (restarts included); raft term %g -> %g\n",
		s.Before.LeaderChanges, s.After.LeaderChanges, s.LeaderChanges, s.Terms[0], s.Terms[1])
	fmt.Fprintf(w, "load: %d writes ok, %d failed, p99 %s\n", s.Load.WritesOK, s.Load.WritesFailed, fmtLatency(s.Load.P99))
	if len(s.Load.Errors) > 0 {
		// Writes caught by a restart of the leader fail until the next
		// leader is known; the reasons tell that from a real problem.
		reasons := slices.Sorted(maps.Keys(s.Load.Errors))
		var parts []string
		for _, r := range reasons {
			parts = append(parts, fmt.Sprintf("%s: %d", r, s.Load.Errors[r]))
		}
		fmt.Fprintf(w, "  failed writes by reason: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "\nverdict: %s: %s\n", s.Verdict, s.Reason)
	for _, sk := range s.Soaks {
		if sk.Verdict == gates.Fail {
			fmt.Fprintf(w, "advance refused: nothing else was changed. In a real rollout, take the flag off with:\n  lanectl rollback --replica %s\n", strings.Join(sk.Replicas, " --replica "))
		}
	}
	fmt.Fprintf(w, `
next: point lanectl at a real cluster (README: "Pointing lanectl at a real
cluster"), write your plan (README: "The plan file (lanectl.yaml)"), then
'lanectl advance --dry-run' shows every step and the exact remote commands.
`)
	return nil
}

// writeTransferSummary prints the head-of-line comparison: the other
// groups' appends to the slow follower while snapshots travelled to it,
// legacy vs four-lane, and how it was measured.
func writeTransferSummary(w io.Writer, t demo.TransferSummary) error {
	fmt.Fprintf(w, "\nsnapshot transfers: group %d's snapshots from its leader to %s over a shaped %s/s link (%d forced, %d failed; %d sent never arrived, cut off by a restart);\nthe other %d groups' appends to %s share that leader's lanes and connections to %s\n",
		t.Group, t.Follower, fmtBytes(t.LinkBytesPerSecond), t.Forced, t.Failed, t.Abandoned, t.Groups-1, t.Follower, t.Follower)
	if t.LastError != "" {
		fmt.Fprintf(w, "  last failed snapshot: %s\n", t.LastError)
	}
	var rows [][]string
	for _, l := range []demo.TransferLayout{t.Legacy, t.FourLane} {
		rows = append(rows, []string{l.Layout, fmt.Sprint(l.Transfers), fmtBytes(int64(l.SnapshotBytes)), latencyCell(l.TransferP50),
			fmt.Sprint(l.Appends), latencyCell(l.DeliveryP50), latencyCell(l.DeliveryP99), latencyCell(l.DeliveryMax), fmt.Sprint(l.Lost)})
	}
	if err := writeTable(w, []string{"SENDER'S LAYOUT", "TRANSFERS", "SNAPSHOT", "TRANSFER P50", "OTHER GROUPS' MSGAPP", "DELIVERY P50", "P99", "MAX", "LOST"}, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "other groups' MsgApp delivery p99 to %s during snapshot transfers: %s\n", t.Follower, transferComparison(t))
	fmt.Fprintf(w, "  (delivery: the leader's dispatcher accepting the append to %s's transport having it whole, from the replicas' own hooks;\n   each transfer counts for the layout of the leader that sent it)\n", t.Follower)
	return nil
}

func transferComparison(t demo.TransferSummary) string {
	switch {
	case t.Ratio != nil:
		return fmt.Sprintf("legacy %s vs four-lane %s (%s)", latencyCell(t.Legacy.DeliveryP99), latencyCell(t.FourLane.DeliveryP99), strings.TrimSuffix(fmtRatio(*t.Ratio), "x")+"×")
	case t.Legacy.DeliveryP99 == nil && t.FourLane.DeliveryP99 == nil:
		return "no appends were sent during a transfer: nothing to compare"
	default:
		return fmt.Sprintf("legacy %s vs four-lane %s (no ratio: one layout sent no appends during a transfer)", latencyCell(t.Legacy.DeliveryP99), latencyCell(t.FourLane.DeliveryP99))
	}
}

// judgedRows keeps, for a passing soak, only the rows a gate judged: the
// baselines a canary-only gate merely shows add nothing to a pass. A soak
// that did not pass keeps every row as evidence.
func judgedRows(r gates.Result) gates.Result {
	if r.Verdict != gates.Pass {
		return r
	}
	out := r
	out.Gates = make([]gates.GateResult, len(r.Gates))
	for i, g := range r.Gates {
		g.Values = slices.DeleteFunc(slices.Clone(g.Values), func(v gates.ReplicaValue) bool { return v.Verdict == "" })
		out.Gates[i] = g
	}
	return out
}

func countCell(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *v)
}

func rateCell(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

func latencyCell(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmtLatency(time.Duration(*v * float64(time.Second)))
}
