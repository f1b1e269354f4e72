package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/spf13/cobra"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/rollout"
	"github.com/lanectl/lanectl/targets"
)

// SoakOptions are the inputs of 'lanectl soak'.
type SoakOptions struct {
	Streams *IOStreams
	// Getenv finds ~/.ssh and the agent when a plan's flag gate needs the
	// read command run on the replicas.
	Getenv Getenv
	// Config is the plan file; empty means none: replicas are then node_id
	// values.
	Config    string
	Canaries  []string
	Baselines []string
	// Window is the soak length (--hours or --window); zero means the
	// plan's, else 24h.
	Window time.Duration
	// Start is --start; zero means the rollout state's enable time for the
	// canaries, else now.
	Start      time.Time
	Prometheus string
	Targets    []string
	// Interval is how often a live soak re-evaluates (and the embedded
	// store scrapes); zero means the plan's, else 1m.
	Interval       time.Duration
	ExpectSyncMode string
	// Target names what lanectl assumes about the replicas; empty means
	// the plan's, else lanectl.
	Target    string
	ListGates bool
	Output    string
	// Record is --record: a file to keep the verdict's evidence in, for
	// 'lanectl judge'.
	Record string
	// Now is the clock; tests pin it.
	Now func() time.Time
}

// maxQueryErrors is how many evaluations in a row may fail (Prometheus
// restarting, a network blip) before a live soak gives up.
const maxQueryErrors = 3

// NewCmdSoak builds 'lanectl soak'. runF replaces runSoak in tests.
func NewCmdSoak(streams *IOStreams, getenv Getenv, runF func(*cobra.Command, *SoakOptions) error) *cobra.Command {
	opts := &SoakOptions{Streams: streams, Getenv: getenv, Now: time.Now}
	var (
		hours  float64
		window time.Duration
		start  string
	)
	cmd := &cobra.Command{
		Use:   "soak --canary NAME [--baseline NAME,...] [--hours H | --window D] [--start RFC3339] [--prometheus URL | --targets URL,...]",
		Short: "Judge whether canary replicas with the flag behaved as well as the baselines",
		Long: `Evaluate the soak gates for the canary replicas over a window and print a
verdict with its evidence: every gate, every replica's value, the limit, and
the PromQL behind it.

The window is [start, start + hours]. Start is --start, else the time the
rollout state (--config) recorded the flag going on for the canary, else now.
A window already in the past is decided at once from history. Otherwise the
gates are evaluated every --interval over [start, now]: the soak stops at
the first failing gate, and passes only once the window is over. Interrupting
it (Ctrl-C) prints the verdict so far and exits 2; running it again with the
same --start continues the same window.

Each gate is one PromQL query for all replicas at once. Without --config a
replica NAME is the series with node_id="NAME"; without --baseline every
replica whose flag was off for the whole window is a baseline. Metrics come
from a Prometheus-compatible server (--prometheus) or from an embedded store
that scrapes the replicas' /metrics itself (--targets). With --config that
store is kept next to the rollout journal (<state>.metrics), so a later run
judges from what this one recorded; one lanectl at a time can write it.
Without --config it knows only what it scraped since it started.

Exit codes: 0 pass, 1 a gate failed, 2 inconclusive (not enough data, or the
window is not over), 3 bad input or metrics unreachable.`,
		Example: `  # decide a finished 24h soak of n2 from Prometheus
  lanectl soak --canary n2 --hours 24 --start 2026-11-24T09:00:00Z --prometheus http://prometheus:9090

  # watch a soak live against the other replicas, scraping them directly
  lanectl soak --canary n2 --baseline n1,n3 --window 30m --targets http://10.0.0.1:9101/metrics,http://10.0.0.2:9101/metrics,http://10.0.0.3:9101/metrics

  # the canary of a rollout plan, from the time the flag went on
  lanectl soak --config lanectl.yaml --canary prod-1 -o json

  # the gates and their limits
  lanectl soak --list-gates`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, opts.Output); err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("hours") && f.Changed("window") {
				return usageErrorf(cmd, "--hours and --window both set: give one")
			}
			if f.Changed("prometheus") && f.Changed("targets") {
				return usageErrorf(cmd, "--prometheus and --targets both set: give one")
			}
			switch {
			case f.Changed("hours"):
				if hours <= 0 || math.IsNaN(hours) || math.IsInf(hours, 0) {
					return usageErrorf(cmd, "invalid --hours %v: want a number of hours > 0", hours)
				}
				opts.Window = time.Duration(hours * float64(time.Hour))
			case f.Changed("window"):
				if window <= 0 {
					return usageErrorf(cmd, "invalid --window %v: want a duration > 0", window)
				}
				opts.Window = window
			}
			if start != "" {
				t, err := time.Parse(time.RFC3339, start)
				if err != nil {
					return usageErrorf(cmd, "invalid --start %q: want RFC3339, e.g. 2026-11-24T09:00:00Z", start)
				}
				opts.Start = t
			}
			if f.Changed("interval") && opts.Interval <= 0 {
				return usageErrorf(cmd, "invalid --interval %v: want a duration > 0", opts.Interval)
			}
			if opts.ExpectSyncMode != "" && opts.ExpectSyncMode != "sync" && opts.ExpectSyncMode != "nosync" {
				return usageErrorf(cmd, "invalid --expect-sync-mode %q: want sync or nosync", opts.ExpectSyncMode)
			}
			if !opts.ListGates && len(opts.Canaries) == 0 {
				return usageErrorf(cmd, "--canary is required")
			}
			for _, n := range append(slices.Clone(opts.Canaries), opts.Baselines...) {
				if strings.TrimSpace(n) == "" {
					return usageErrorf(cmd, "empty replica name in --canary or --baseline")
				}
			}
			if runF != nil {
				return runF(cmd, opts)
			}
			return runSoak(cmd, opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Config, "config", "c", "", "plan file (replica selectors, Prometheus, gate overrides, rollout state)")
	f.StringSliceVar(&opts.Canaries, "canary", nil, "canary replica(s) running with the flag")
	f.StringSliceVar(&opts.Baselines, "baseline", nil, "baseline replicas without the flag (default: every replica with the flag off)")
	f.Float64Var(&hours, "hours", 0, "soak length in hours (default: the plan's, else 24)")
	f.DurationVar(&window, "window", 0, "soak length as a duration, e.g. 90s or 36h")
	f.StringVar(&start, "start", "", "window start, RFC3339 (default: when the flag went on per the rollout state, else now)")
	f.StringVar(&opts.Prometheus, "prometheus", "", "Prometheus-compatible API base URL")
	f.StringSliceVar(&opts.Targets, "targets", nil, "replica /metrics URLs for the embedded store, instead of --prometheus")
	f.DurationVar(&opts.Interval, "interval", 0, "live re-evaluation and scrape interval, at least Prometheus's scrape interval (default: the plan's, else 1m)")
	f.StringVar(&opts.ExpectSyncMode, "expect-sync-mode", "", "sync mode every replica must be in: sync or nosync (default: the plan's, else sync)")
	f.StringVar(&opts.Target, "target", "", "what the replicas are: "+strings.Join(targets.Names(), " or ")+" (default: the plan's, else "+targets.Default+")")
	f.BoolVar(&opts.ListGates, "list-gates", false, "list the gates with their limits and exit")
	f.StringVar(&opts.Record, "record", "", "write the verdict's evidence (every gate's query and per-replica values) to `FILE`, for 'lanectl judge'")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// soakRun is the decided soak and where its metrics come from.
type soakRun struct {
	target targets.Target
	soak   *rollout.Soak
	// evidence reads the flag on the replicas for a gate the metrics
	// cannot decide; nil when no gate needs it.
	evidence func(context.Context, *gates.Request)
	source   string
	querier  gates.Querier
	close    func()
}

func runSoak(cmd *cobra.Command, opts *SoakOptions) error {
	var plan *rollout.Plan
	if opts.Config != "" {
		p, err := rollout.LoadPlan(opts.Config)
		if err != nil {
			return err
		}
		plan = p
	}
	target, err := soakTarget(opts, plan)
	if err != nil {
		return err
	}
	if opts.ListGates {
		if target.Gates == nil {
			return fmt.Errorf("soak --list-gates: %w: %s", rollout.ErrNoGates, target.Name)
		}
		set := target.Gates()
		if plan != nil {
			if set, err = plan.GateSet(); err != nil {
				return err
			}
		}
		return writeGateList(opts, target, set)
	}
	run, err := resolveSoak(cmd.Context(), opts, plan, target)
	if err != nil {
		return err
	}
	defer run.close()
	return watchSoak(cmd.Context(), opts, run)
}

// resolveSoak asks rollout to decide the soak (the same decision advance
// makes) and opens its metrics source.
func resolveSoak(ctx context.Context, opts *SoakOptions, plan *rollout.Plan, target targets.Target) (*soakRun, error) {
	q := rollout.SoakQuestion{
		Canaries: opts.Canaries, Baselines: opts.Baselines, Window: opts.Window, Start: opts.Start,
		Interval: opts.Interval, ExpectSyncMode: opts.ExpectSyncMode,
	}
	// The window of a soak starting now starts before the store's first
	// scrape, so that scrape is inside it.
	now := opts.Now()
	run := &soakRun{target: target, close: func() {}}
	if plan != nil {
		// The journal is checked against the plan, as advance checks it.
		st, err := rollout.LoadJournal(plan, now)
		if err != nil {
			return nil, err
		}
		if run.soak, err = plan.DecideSoak(st, q, now); err != nil {
			return nil, err
		}
		if rollout.NeedsFlagEvidence(run.soak.Set) {
			// The metrics cannot show the flag: each look reads it on the
			// replicas, over SSH, as advance does when it judges.
			d, closeDriver, err := newDriver(ctx, opts.Streams, opts.Getenv, opts.Config, driverDeps{readFlag: true})
			if err != nil {
				return nil, err
			}
			defer func() { run.close = chain(run.close, closeDriver) }()
			set := run.soak.Set
			run.evidence = func(ctx context.Context, req *gates.Request) { d.FillFlagEvidence(ctx, st, set, req) }
		}
	}
	window, interval := opts.Window, opts.Interval
	if run.soak != nil {
		window, interval = run.soak.Request.Window.Duration(), run.soak.Interval
	}
	interval = cmpDuration(interval, rollout.DefaultSoakInterval)
	promURL, targetURLs := opts.Prometheus, opts.Targets
	httpCfg := config.DefaultHTTPClientConfig
	var promOpts []query.PrometheusOption
	if plan != nil {
		httpCfg = plan.Prometheus.HTTPConfig
		promOpts = append(promOpts, query.WithQueryTimeout(plan.Prometheus.QueryTimeout))
		if promURL == "" && len(targetURLs) == 0 {
			promURL, targetURLs = plan.Prometheus.URL, plan.Prometheus.Targets
		}
	}
	switch {
	case promURL != "":
		q, err := query.NewRemote(promURL, httpCfg, promOpts...)
		if err != nil {
			return nil, err
		}
		run.querier, run.source, run.close = q, q.URL(), func() { _ = q.Close() }
	case len(targetURLs) > 0:
		// With a plan the store keeps its history next to the journal;
		// without one there is nowhere to keep it, so it is temporary.
		var storeOpts query.EmbeddedOptions
		if plan != nil {
			o, err := planStoreOptions(plan, window, interval)
			if err != nil {
				return nil, err
			}
			storeOpts = o
		}
		e, err := query.NewEmbedded(ctx, targetURLs, interval, storeOpts)
		if err != nil {
			return nil, err
		}
		run.querier, run.close = e, func() { _ = e.Close() }
		run.source = fmt.Sprintf("embedded store scraping %d targets every %s", len(targetURLs), formatDuration(interval))
		if plan != nil {
			run.source += " into " + e.Dir()
		}
		defer func() {
			if run.soak == nil {
				return
			}
			if since, start := e.HistoryStart(), run.soak.Request.Window.Start; start.Before(since.Add(-interval)) {
				fmt.Fprintf(opts.Streams.ErrOut, "note: the embedded store has no history before %s; the window starts at %s, so coverage will be short of it\n", formatTime(since), formatTime(start))
			}
		}()
	default:
		return nil, errors.New("no metrics source: give --prometheus URL or --targets URL,... (or --config with a prometheus block)")
	}
	if plan == nil {
		s, err := rollout.SoakWithoutPlan(ctx, target, run.querier, run.source, q, now, opts.Now())
		if err != nil {
			run.close()
			return nil, err
		}
		run.soak = s
	}
	return run, nil
}

// chain is a close function that runs a, then b.
func chain(a, b func()) func() {
	return func() { a(); b() }
}

func cmpDuration(v, def time.Duration) time.Duration {
	if v != 0 {
		return v
	}
	return def
}

// watchSoak looks at once, and then, while the soak is open, watches it
// with rollout's loop until it is decided or ctx is cancelled.
func watchSoak(ctx context.Context, opts *SoakOptions, run *soakRun) error {
	w := rollout.Watch{
		Querier:   run.querier,
		Soak:      run.soak,
		Now:       opts.Now,
		MaxErrors: maxQueryErrors,
		Evidence:  run.evidence,
		OnLook:    func(res gates.Result) { progress(opts, run, res) },
		OnError: func(err error, n int) {
			fmt.Fprintf(opts.Streams.ErrOut, "%s evaluation failed (%d of %d allowed in a row): %v\n", formatTime(opts.Now()), n, maxQueryErrors, err)
		},
	}
	res, err := w.Look(ctx)
	if err != nil {
		return err
	}
	if res.Complete || res.Verdict == gates.Fail {
		return finishSoak(opts, run, res, false)
	}
	req := run.soak.Request
	fmt.Fprintf(opts.Streams.ErrOut, "soak of %s from %s (%s) until %s, evaluating every %s\n",
		strings.Join(targetNames(req.Canaries), ", "), formatTime(req.Window.Start), run.soak.StartFrom, formatTime(req.Window.End), soakDuration(run.soak.Interval))
	progress(opts, run, res)
	final, err := w.Run(ctx)
	if opts.Streams.IsTTY {
		fmt.Fprintln(opts.Streams.ErrOut)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		// The command's context is gone; the last look gets its own.
		if last, lerr := w.Look(context.WithoutCancel(ctx)); lerr == nil {
			final = last
		} else if final.Verdict == "" {
			final = res
		}
		if final.Verdict == gates.Pass {
			final.Verdict = gates.Inconclusive
		}
		fmt.Fprintf(opts.Streams.ErrOut, "interrupted: continue this window with --start %s\n", req.Window.Start.UTC().Format(time.RFC3339))
		return finishSoak(opts, run, final, true)
	case err != nil:
		return err
	}
	return finishSoak(opts, run, final, false)
}
