package cli

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/node/loadgen"
)

// LoadOptions are the inputs of 'lanectl load'.
type LoadOptions struct {
	Streams       *IOStreams
	Targets       []string
	Rate          float64
	ValueSize     int
	Keys          int
	Duration      time.Duration
	SnapshotEvery time.Duration
	Concurrency   int
	ProgressEvery time.Duration
	// HTTPConfig is --http-config: a prometheus/common HTTP client config
	// file for replicas that need TLS or a bearer token.
	HTTPConfig string
	Output     string
}

// NewCmdLoad builds 'lanectl load'. runF replaces runLoad in tests.
func NewCmdLoad(streams *IOStreams, runF func(*LoadOptions) error) *cobra.Command {
	opts := &LoadOptions{Streams: streams}
	cmd := &cobra.Command{
		Use:   "load --targets URL,... [--rate N] [--value-size BYTES] [--duration D] [--snapshot-every D]",
		Short: "Drive write load against a cluster, forcing snapshot transfers",
		Long: `Write to a running cluster at a fixed rate, spreading writes over the given
replica HTTP addresses (followers forward to the leader), and every
--snapshot-every ask a leader to send a full snapshot to a follower, so a
soak exercises the snapshot lane too. Keys cycle through --keys names, so the
store (and every snapshot) holds about keys x value-size bytes. On replicas
running several raft groups (node run --groups) the keys spread over the
groups by hash, and the forced snapshots go group by group, each from that
group's leader.

Progress goes to stderr; the summary (writes ok/failed, p50/p99/max write
latency, snapshots forced) to stdout. Without --duration it runs until
interrupted. It fails (exit 3) when no write succeeded.

Replicas started with TLS or a token (node run --http-cert/--http-ca,
--http-token-file) are reached through --http-config FILE, an HTTP client
config as in prometheus.yml: tls_config (ca_file, cert_file, key_file) and
authorization (credentials_file). Relative paths in it are relative to the
file.`,
		Example: `  lanectl load --targets http://127.0.0.1:9101,http://127.0.0.1:9102,http://127.0.0.1:9103 \
      --rate 200 --value-size 4096 --duration 5m --snapshot-every 1m
  lanectl load --targets http://127.0.0.1:9101 --duration 30s -o json
  lanectl load --targets https://10.0.0.1:9101,https://10.0.0.2:9101 --http-config load-client.yml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			if len(opts.Targets) == 0 {
				return usageErrorf(cmd, "--targets is required")
			}
			if opts.Rate <= 0 {
				return usageErrorf(cmd, "invalid --rate %v: want writes per second > 0", opts.Rate)
			}
			if opts.ValueSize < 0 || opts.Keys <= 0 || opts.Concurrency <= 0 {
				return usageErrorf(cmd, "--value-size must be >= 0, --keys and --concurrency > 0")
			}
			if opts.Duration < 0 || opts.SnapshotEvery < 0 || opts.ProgressEvery <= 0 {
				return usageErrorf(cmd, "--duration and --snapshot-every must be >= 0, --progress > 0")
			}
			if runF != nil {
				return runF(opts)
			}
			return runLoad(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Targets, "targets", nil, "replica HTTP base URLs, comma-separated")
	f.Float64Var(&opts.Rate, "rate", loadgen.DefaultRate, "writes per second")
	f.IntVar(&opts.ValueSize, "value-size", loadgen.DefaultValueSize, "bytes per value")
	f.IntVar(&opts.Keys, "keys", loadgen.DefaultKeys, "number of distinct keys written in turn")
	f.DurationVar(&opts.Duration, "duration", 0, "how long to run (0: until interrupted)")
	f.DurationVar(&opts.SnapshotEvery, "snapshot-every", 0, "force a snapshot transfer to a follower this often (0: never)")
	f.IntVar(&opts.Concurrency, "concurrency", loadgen.DefaultConcurrency, "writes in flight at most")
	f.DurationVar(&opts.ProgressEvery, "progress", loadgen.DefaultProgressEvery, "interval between progress lines")
	f.StringVar(&opts.HTTPConfig, "http-config", "", "HTTP client config `FILE` (prometheus/common: tls_config, authorization) for the replicas")
	_ = cmd.MarkFlagFilename("http-config", "yaml", "yml")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func runLoad(cmd *cobra.Command, opts *LoadOptions) error {
	errOut := opts.Streams.ErrOut
	var client *http.Client
	if opts.HTTPConfig != "" {
		cfg, _, err := config.LoadHTTPConfigFile(opts.HTTPConfig)
		if err != nil {
			return fmt.Errorf("--http-config %s: %w", opts.HTTPConfig, err)
		}
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("--http-config %s: %w", opts.HTTPConfig, err)
		}
		if client, err = config.NewClientFromConfig(*cfg, "lanectl-load"); err != nil {
			return fmt.Errorf("--http-config %s: %w", opts.HTTPConfig, err)
		}
		defer client.CloseIdleConnections()
	}
	res, err := loadgen.Run(cmd.Context(), loadgen.Config{
		Client:        client,
		Targets:       opts.Targets,
		Rate:          opts.Rate,
		ValueSize:     opts.ValueSize,
		Keys:          opts.Keys,
		Duration:      opts.Duration,
		SnapshotEvery: opts.SnapshotEvery,
		Concurrency:   opts.Concurrency,
		ProgressEvery: opts.ProgressEvery,
		Progress: func(p loadgen.Progress) {
			// On a terminal the line redraws in place; in a log, one line
			// per report.
			start, end := "", "\n"
			if opts.Streams.IsTTY {
				start, end = "\r\033[K", ""
			}
			fmt.Fprintf(errOut, "%s%s  writes ok %d failed %d  p99 %s  snapshots forced %d failed %d%s",
				start, p.Elapsed.Round(time.Second), p.WritesOK, p.WritesFailed, fmtLatency(p.P99), p.SnapshotsForced, p.SnapshotsFailed, end)
		},
	})
	if opts.Streams.IsTTY {
		fmt.Fprintln(errOut)
	}
	if err != nil {
		return usageErrorf(cmd, "%v", err)
	}
	if opts.Output == outputJSON {
		err = writeJSON(opts.Streams.Out, res)
	} else {
		err = writeLoadTable(opts, res)
	}
	if err != nil {
		return err
	}
	if res.WritesOK == 0 && res.WritesFailed > 0 {
		return fmt.Errorf("load: all %d writes failed", res.WritesFailed)
	}
	return nil
}

func writeLoadTable(opts *LoadOptions, res loadgen.Result) error {
	rate := 0.0
	if s := res.Elapsed.Seconds(); s > 0 {
		rate = float64(res.WritesOK) / s
	}
	rows := [][]string{
		{"duration", res.Elapsed.Round(time.Millisecond).String()},
		{"targets", strings.Join(res.Targets, ",")},
		{"writes ok", strconv.FormatInt(res.WritesOK, 10)},
		{"writes failed", strconv.FormatInt(res.WritesFailed, 10)},
		{"write rate", fmt.Sprintf("%.1f/s (asked %.1f/s)", rate, res.Rate)},
		{"p50 latency", fmtLatency(res.P50)},
		{"p99 latency", fmtLatency(res.P99)},
		{"max latency", fmtLatency(res.Max)},
		{"snapshots forced", strconv.FormatInt(res.SnapshotsForced, 10)},
		{"snapshots failed", strconv.FormatInt(res.SnapshotsFailed, 10)},
	}
	if res.LastSnapshotError != "" {
		rows = append(rows, []string{"last snapshot error", res.LastSnapshotError})
	}
	reasons := make([]string, 0, len(res.Errors))
	for r := range res.Errors {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		rows = append(rows, []string{"failed: " + r, strconv.FormatInt(res.Errors[r], 10)})
	}
	return writeTable(opts.Streams.Out, []string{"LOAD", "VALUE"}, rows)
}

func fmtLatency(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}
