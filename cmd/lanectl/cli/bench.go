package cli

import (
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/node/holbench"
	"github.com/lanectl/lanectl/node/replica"
)

// NewCmdBench builds 'lanectl bench', the parent of the benchmarks.
func NewCmdBench(streams *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Benchmarks that show why the lanes exist",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(NewCmdBenchHOL(streams, nil))
	return cmd
}

// Scenarios of 'lanectl bench hol'.
const (
	scenarioDirect  = "direct"
	scenarioCluster = "cluster"
)

// BenchHOLOptions are the inputs of 'lanectl bench hol'.
type BenchHOLOptions struct {
	Streams  *IOStreams
	Scenario string
	Config   holbench.Config
	// MinRatio is the target: legacy MsgApp delivery p99 over four-lane.
	MinRatio float64
	// Verbose logs every replica's and raft's info lines to stderr.
	Verbose bool
	Output  string
}

// NewCmdBenchHOL builds 'lanectl bench hol'. runF replaces runBenchHOL in
// tests.
func NewCmdBenchHOL(streams *IOStreams, runF func(*BenchHOLOptions) error) *cobra.Command {
	opts := &BenchHOLOptions{Streams: streams}
	var snapshotMiB, linkMiBps float64
	var linkChunkKiB int
	cmd := &cobra.Command{
		Use:   "hol [--scenario cluster|direct] [--groups N] [--snapshot-mib N] [--link-mibps N]",
		Short: "Measure head-of-line blocking behind a snapshot, legacy vs four-lane",
		Long: `Send a large snapshot to a follower over a bandwidth-limited link while
appends and heartbeats keep flowing to it, once with the legacy two-lane
dispatcher and once with the four-lane dispatcher, and print what the appends
and heartbeats went through during the transfer: queue wait (enqueue to
transport send) and delivery (enqueue to arrival at the follower), p50, p99
and max; the longest heartbeat silence; elections; dispatcher drops and
errors. The last column is legacy divided by four-lane.

The link is simulated: one token bucket shared by all of the leader's
connections to that follower, releasing bytes in small chunks so the
connections interleave as flows on a real wire do. Both layouts get the same
link. Everything runs on 127.0.0.1.

Scenarios:
  cluster  (default) the proof in real raft: three real replicas (raft,
           bbolt, the replica's own dispatcher and transport), each running
           --groups raft groups whose leaders are all on one replica, so
           every group's messages to a follower share that leader's lanes
           and connections to it, as in a multi-raft store. Group 0's store
           is preloaded to --snapshot-mib and a snapshot of it forced to
           the follower behind the link, while the other groups take a
           write every --append-interval. MsgApp rows are the other groups'
           appends to that follower; heartbeats are every group's. Queue
           wait comes from the leader's
           elastickv_raft_dispatch_queue_wait_seconds histogram; delivery is
           enqueue in the leader's dispatcher to arrival; heartbeat and
           election intervals are rounded up to 100ms raft ticks. With
           --groups 1 raft sends no MsgApp to the follower during its own
           snapshot, and the run is inconclusive.
  direct   a model, not raft: the leader's real Dispatcher and
           transport.TCP sending to a follower's transport.TCP, appends
           coming at a fixed rate while the snapshot is in flight. Elections
           here are heartbeat silences longer than --election-timeout.

The command passes (exit 0) when four-lane MsgApp delivery p99 is at least
--min-ratio times better than legacy and the four-lane run saw no election;
it fails (exit 1) otherwise, and is inconclusive (exit 2) when a run measured
fewer than 20 MsgApps to the follower during the transfer.`,
		Example: `  lanectl bench hol
  lanectl bench hol --scenario direct --snapshot-mib 128 --link-mibps 64
  lanectl bench hol -o json | jq .four_lane.append.delivery`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if opts.Scenario != scenarioDirect && opts.Scenario != scenarioCluster {
				return usageErrorf(cmd, "invalid --scenario %q: want direct or cluster", opts.Scenario)
			}
			if snapshotMiB <= 0 || linkMiBps <= 0 || linkChunkKiB <= 0 {
				return usageErrorf(cmd, "--snapshot-mib, --link-mibps and --link-chunk-kib must be > 0")
			}
			c := &opts.Config
			if c.AppendInterval <= 0 || c.HeartbeatInterval <= 0 || c.ElectionTimeout <= 0 {
				return usageErrorf(cmd, "--append-interval, --heartbeat-interval and --election-timeout must be > 0")
			}
			if c.Groups < 1 || c.Groups > replica.MaxGroups {
				return usageErrorf(cmd, "invalid --groups %d: want 1 to %d", c.Groups, replica.MaxGroups)
			}
			if opts.MinRatio < 0 {
				return usageErrorf(cmd, "invalid --min-ratio %v: want >= 0", opts.MinRatio)
			}
			c.SnapshotBytes = int(snapshotMiB * (1 << 20))
			c.LinkBytesPerSecond = int64(linkMiBps * (1 << 20))
			c.LinkChunk = linkChunkKiB << 10
			level := slog.LevelWarn
			if opts.Verbose {
				level = slog.LevelInfo
			}
			c.Logger = slog.New(slog.NewTextHandler(streams.ErrOut, &slog.HandlerOptions{Level: level}))
			if runF != nil {
				return runF(opts)
			}
			return runBenchHOL(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Scenario, "scenario", scenarioCluster, "cluster (three replicas, real raft) or direct (dispatcher and transport, no raft: a model)")
	f.IntVar(&opts.Config.Groups, "groups", holbench.DefaultGroups, "raft groups per replica in the cluster scenario")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "log the replicas' and raft's info lines to stderr")
	f.Float64Var(&snapshotMiB, "snapshot-mib", holbench.DefaultSnapshotBytes>>20, "snapshot size in MiB")
	f.Float64Var(&linkMiBps, "link-mibps", holbench.DefaultLinkBytesPerSecond>>20, "link bandwidth leader -> follower, MiB/s")
	f.IntVar(&linkChunkKiB, "link-chunk-kib", holbench.DefaultLinkChunk>>10, "piece size the link releases bytes in, KiB")
	f.DurationVar(&opts.Config.AppendInterval, "append-interval", holbench.DefaultAppendInterval, "time between appends (direct) or writes to the leader (cluster)")
	f.IntVar(&opts.Config.EntryBytes, "entry-bytes", holbench.DefaultEntryBytes, "bytes per appended entry")
	f.DurationVar(&opts.Config.HeartbeatInterval, "heartbeat-interval", holbench.DefaultHeartbeatInterval, "time between heartbeats")
	f.DurationVar(&opts.Config.ElectionTimeout, "election-timeout", holbench.DefaultElectionTimeout, "silence after which a follower campaigns")
	f.Float64Var(&opts.MinRatio, "min-ratio", 20, "required legacy/four-lane ratio of MsgApp delivery p99")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// byteCount writes n bytes in MiB (or KiB below one MiB).
func byteCount(n int64) string {
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', -1, 64) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<10), 'f', -1, 64) + " KiB"
}

func runBenchHOL(cmd *cobra.Command, opts *BenchHOLOptions) error {
	var (
		rep holbench.Report
		err error
	)
	fmt.Fprintf(opts.Streams.ErrOut, "bench hol: %s scenario, the legacy layout then the four-lane one; each run sends a %s snapshot over a %s/s link\n",
		opts.Scenario, byteCount(int64(opts.Config.SnapshotBytes)), byteCount(opts.Config.LinkBytesPerSecond))
	switch opts.Scenario {
	case scenarioCluster:
		rep, err = holbench.RunCluster(cmd.Context(), opts.Config)
	default:
		rep, err = holbench.RunDirect(cmd.Context(), opts.Config)
	}
	if err != nil {
		return fmt.Errorf("bench hol: %w", err)
	}
	verdict, outcome := holVerdict(rep, opts.MinRatio)
	if opts.Output == outputJSON {
		err = writeJSON(opts.Streams.Out, struct {
			holbench.Report
			AppendP99Ratio jsonRatio `json:"append_p99_ratio"`
			Verdict        string    `json:"verdict"`
		}{rep, jsonRatio(rep.AppendP99Ratio()), verdict})
	} else {
		err = writeHOLTable(opts.Streams, rep, verdict)
	}
	if err != nil {
		return err
	}
	if outcome != nil {
		return fmt.Errorf("bench hol: %w", outcome)
	}
	return nil
}

// jsonRatio encodes +Inf (a four-lane value of zero) as null, which JSON
// can carry.
type jsonRatio float64

func (r jsonRatio) MarshalJSON() ([]byte, error) {
	if math.IsInf(float64(r), 0) || math.IsNaN(float64(r)) {
		return []byte("null"), nil
	}
	return []byte(strconv.FormatFloat(float64(r), 'f', 2, 64)), nil
}

// holVerdict checks the targets: the MsgApp p99 ratio and no four-lane
// election. The error is nil on a pass and wraps ErrFailed or
// ErrInconclusive otherwise.
func holVerdict(rep holbench.Report, minRatio float64) (string, error) {
	ratio := rep.AppendP99Ratio()
	var problems []string
	if n := rep.FourLane.Elections; n > 0 {
		problems = append(problems, fmt.Sprintf("%d election(s) in the four-lane run (target 0)", n))
	}
	ok, why := rep.Conclusive()
	if ok && ratio < minRatio {
		problems = append(problems, fmt.Sprintf("four-lane MsgApp delivery p99 is only %s better than legacy (target >= %gx)", fmtRatio(ratio), minRatio))
	}
	switch {
	case len(problems) > 0:
		v := "fail: " + strings.Join(problems, "; ")
		return v, fmt.Errorf("%s: %w", v, ErrFailed)
	case !ok:
		v := "inconclusive: " + why
		return v, fmt.Errorf("%s: %w", v, ErrInconclusive)
	}
	return fmt.Sprintf("pass: four-lane MsgApp delivery p99 is %s better than legacy (target >= %gx); no election in the four-lane run",
		fmtRatio(ratio), minRatio), nil
}

func writeHOLTable(streams *IOStreams, rep holbench.Report, verdict string) error {
	s := rep.Setup
	scenario := rep.Scenario
	if s.Groups > 0 {
		scenario = fmt.Sprintf("%s, %d raft groups", scenario, s.Groups)
	}
	fmt.Fprintf(streams.Out, "head-of-line benchmark (%s): %s snapshot over a %s/s link in %s chunks (%s each); append every %s, heartbeat every %s\n\n",
		scenario, fmtBytes(int64(s.SnapshotBytes)), fmtBytes(s.LinkBytesPerSecond), fmtBytes(int64(s.LinkChunkBytes)),
		fmtBenchDuration(s.LinkChunkTime), fmtBenchDuration(s.AppendInterval), fmtBenchDuration(s.HeartbeatInterval))
	l, f := rep.Legacy, rep.FourLane
	var rows [][]string
	durRow := func(name string, a, b time.Duration) {
		rows = append(rows, []string{name, fmtBenchDuration(a), fmtBenchDuration(b), fmtRatio(holbench.Ratio(a, b))})
	}
	traffic := func(name string, a, b holbench.Traffic) {
		rows = append(rows, []string{name + " lane", a.Lane, b.Lane, ""})
		rows = append(rows, []string{name + " count", strconv.Itoa(a.Delivery.Count), strconv.Itoa(b.Delivery.Count), ""})
		durRow(name+" queue wait p50", a.QueueWait.P50, b.QueueWait.P50)
		durRow(name+" queue wait p99", a.QueueWait.P99, b.QueueWait.P99)
		durRow(name+" queue wait max", a.QueueWait.Max, b.QueueWait.Max)
		durRow(name+" delivery p50", a.Delivery.P50, b.Delivery.P50)
		durRow(name+" delivery p99", a.Delivery.P99, b.Delivery.P99)
		durRow(name+" delivery max", a.Delivery.Max, b.Delivery.Max)
		rows = append(rows, []string{name + " lost", strconv.Itoa(a.Lost), strconv.Itoa(b.Lost), ""})
		if rep.Scenario == scenarioCluster {
			rows = append(rows, []string{name + " arrived before the snapshot", strconv.Itoa(a.DuringTransfer), strconv.Itoa(b.DuringTransfer), ""})
		}
	}
	traffic("MsgApp", l.Append, f.Append)
	traffic("heartbeat", l.Heartbeat, f.Heartbeat)
	durRow("longest heartbeat gap", l.MaxHeartbeatGap, f.MaxHeartbeatGap)
	rows = append(rows,
		[]string{"elections", strconv.Itoa(l.Elections), strconv.Itoa(f.Elections), ""},
	)
	if rep.Scenario == scenarioCluster {
		rows = append(rows, []string{"term changes", strconv.FormatUint(l.TermChanges, 10), strconv.FormatUint(f.TermChanges, 10), ""})
	}
	if l.PrepElections+f.PrepElections > 0 || l.SnapshotPrepare+f.SnapshotPrepare > 0 {
		rows = append(rows, []string{"elections while preparing the snapshot", strconv.Itoa(l.PrepElections), strconv.Itoa(f.PrepElections), ""})
	}
	if l.Writes.Count+f.Writes.Count > 0 {
		rows = append(rows, []string{"writes", strconv.Itoa(l.Writes.Count), strconv.Itoa(f.Writes.Count), ""})
		durRow("write latency p50", l.Writes.P50, f.Writes.P50)
		durRow("write latency p99", l.Writes.P99, f.Writes.P99)
		durRow("write latency max", l.Writes.Max, f.Writes.Max)
	}
	if l.SnapshotPrepare+f.SnapshotPrepare > 0 {
		durRow("snapshot preparation (before the transfer)", l.SnapshotPrepare, f.SnapshotPrepare)
	}
	if l.LoopStall+f.LoopStall > 0 {
		durRow("longest raft loop stall on the leader (snapshot's group)", l.LoopStall, f.LoopStall)
	}
	durRow("snapshot transfer", l.SnapshotTransfer, f.SnapshotTransfer)
	rows = append(rows,
		[]string{"dispatch drops", fmtByLane(l.Dropped), fmtByLane(f.Dropped), ""},
		[]string{"transport errors", fmtByLane(l.Errors), fmtByLane(f.Errors), ""},
	)
	if err := writeTable(streams.Out, []string{"DURING THE TRANSFER", "LEGACY", "FOUR-LANE", "LEGACY/FOUR-LANE"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(streams.Out)
	for _, n := range rep.Notes {
		fmt.Fprintf(streams.Out, "  %s\n", n)
	}
	_, err := fmt.Fprintf(streams.Out, "\n%s\n", verdict)
	return err
}

func fmtBenchDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

func fmtRatio(r float64) string {
	switch {
	case math.IsInf(r, 1):
		return "inf"
	case r >= 10:
		return fmt.Sprintf("%.0fx", r)
	default:
		return fmt.Sprintf("%.1fx", r)
	}
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

// fmtByLane prints counters as "lane=N ..." in lane order, or 0 when all
// are zero.
func fmtByLane(m map[string]float64) string {
	names := make([]string, 0, len(m))
	total := 0.0
	for k, v := range m {
		names = append(names, k)
		total += v
	}
	if total == 0 {
		return "0"
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%g", k, m[k]))
		}
	}
	return strings.Join(parts, " ")
}
