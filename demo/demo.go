package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/loadgen"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/rollout"
	"github.com/lanectl/lanectl/targets"
)

// replicas is the cluster size: one replica per stage.
const replicas = 3

// HeartbeatDropEvery is the injected fault: every Nth heartbeat-lane message
// of the first replica on the new code path is dropped. One in ten is far
// from enough to cost an election, so only the gate notices.
const HeartbeatDropEvery = 10

// Cluster tuning. A 50ms tick with an election timeout of 20 ticks gives
// the 1s election timeout that the last_contact gate's default limit
// stands for.
const (
	tickInterval    = 50 * time.Millisecond
	electionTick    = 20
	proposalTimeout = 5 * time.Second
	// leaderTimeout bounds the wait for the first leader.
	leaderTimeout = 30 * time.Second
	// verifyTimeout bounds a restarted replica's proof of its flag.
	verifyTimeout = 30 * time.Second
	// commandTimeout bounds the env-file rewrite.
	commandTimeout = 30 * time.Second
	// maxAdvances bounds the rollout loop: one enable per replica, one
	// judgement per soak, and room for a step finished late.
	maxAdvances = 2*replicas + 4
)

// Load shape: enough writes to keep every group's replication busy. The
// snapshots' size comes from the preload of the snapshot group (see
// preloadValues), not from this load.
const (
	loadRate      = 50
	loadValueSize = 1024
	loadKeys      = 500
)

var (
	// ErrRefused is returned by Run when the rollout refused to go on: a
	// soak failed a gate, or a replica did not verify and was rolled back.
	ErrRefused = errors.New("rollout refused")
	// ErrUndecided is returned by Run when a soak window ended without
	// enough data to decide.
	ErrUndecided = errors.New("soak undecided")
)

// Config is one demo run.
type Config struct {
	// Duration is the measured time: the legacy baseline and the three
	// soaks (see TimingFor). Zero means DefaultDuration.
	Duration time.Duration
	// InjectHeartbeatDrops restarts the first replica that gets the flag
	// with heartbeat-lane drops, so its soak fails and the rollout is
	// refused.
	InjectHeartbeatDrops bool
	// TempDir is where the demo's working directory is created; empty
	// means the system's temporary directory.
	TempDir string
	// Log receives one timestamped line per step, the rollout driver's
	// own lines included. Nil discards them.
	Log io.Writer
	// OnStart is called once the plan is written, before the first
	// advance, with the plan's path and the timing.
	OnStart func(plan string, t Timing)
	// OnProgress is called with each look at an open soak.
	OnProgress func(Progress)
	// OnJudged is called when advance decided a soak.
	OnJudged func(Judgement)
	// Logger receives the replicas' logs; nil discards them.
	Logger *slog.Logger
}

// Progress is a look at an open soak window.
type Progress struct {
	Replicas []string
	Window   gates.Window
	Elapsed  time.Duration
	Result   gates.Result
}

// Judgement is a soak that advance decided, with its evidence.
type Judgement struct {
	Replicas []string
	// NoBaseline is true when every replica had the flag, so only the
	// gates' absolute limits applied.
	NoBaseline bool
	Result     gates.Result
}

// run is one demo's resources, released by close in reverse order.
type run struct {
	cfg     Config
	tm      Timing
	log     io.Writer
	dir     string
	cluster *replica.LocalCluster
	store   *query.Embedded
	client  *http.Client

	loadCancel context.CancelFunc
	loadDone   chan loadgen.Result

	trace      *transferTrace
	snapshots  *snapshotLoop
	snapCancel context.CancelFunc
	snapDone   chan struct{}

	runner *localRestarter
	driver *rollout.Driver
	sum    *Summary
}

// Run plays the whole rollout on this machine and returns its summary. The
// summary is non-nil once the rollout started, also when it was refused
// (the error then wraps ErrRefused). Cancelling ctx stops the demo; every
// replica, goroutine and file is released before Run returns.
func Run(ctx context.Context, cfg Config) (_ *Summary, err error) {
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	tm, err := TimingFor(cfg.Duration)
	if err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// A private transport, so closing its idle connections at the end
	// leaves no goroutine behind.
	r := &run{cfg: cfg, tm: tm, log: cfg.Log, client: &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}}
	defer func() {
		if cerr := r.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
		}
	}()
	began := time.Now()
	if err := r.setUp(ctx); err != nil {
		return nil, err
	}
	walkErr := r.walk(ctx)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("demo interrupted: %w", context.Cause(ctx))
	}
	sum, err := r.summarise(ctx, walkErr)
	if err != nil {
		return nil, errors.Join(walkErr, err)
	}
	sum.Elapsed = time.Since(began)
	return sum, walkErr
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

// setUp starts everything the rollout acts on: env files, the cluster, the
// embedded store, the load, the legacy baseline, the plan and the driver.
func (r *run) setUp(ctx context.Context) error {
	var err error
	if r.dir, err = os.MkdirTemp(r.cfg.TempDir, "lanectl-demo-"); err != nil {
		return fmt.Errorf("create working directory: %w", err)
	}
	r.logf("working directory %s (removed at the end)", r.dir)
	starts := make([]replica.LocalStart, replicas)
	names := make([]string, replicas)
	for i := range replicas {
		names[i] = fmt.Sprintf("n%d", i+1)
		path := filepath.Join(r.dir, envFileName(names[i]))
		if err := writeEnvFile(path, names[i]); err != nil {
			return err
		}
		env, err := readEnvFile(path)
		if err != nil {
			return err
		}
		starts[i] = replica.LocalStart{Getenv: env.get}
	}
	links, err := newShapedLinks(replicas)
	if err != nil {
		return err
	}
	r.trace = newTransferTrace(slowFollower+1, snapshotGroup)
	r.cluster, err = replica.StartLocalCluster(ctx, replica.LocalClusterConfig{
		Replicas:        replicas,
		Dir:             filepath.Join(r.dir, "data"),
		Start:           starts,
		Groups:          groups,
		TickInterval:    tickInterval,
		HeartbeatTick:   1,
		ElectionTick:    electionTick,
		ProposalTimeout: proposalTimeout,
		TransportOf:     links.transportOf(r.trace),
		Enqueued:        r.trace.enqueued,
		Logger:          r.cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("start cluster: %w", err)
	}
	r.snapshots = &snapshotLoop{cluster: r.cluster, trace: r.trace, interval: r.tm.SnapshotEvery, logf: r.logf}
	urls := make([]string, replicas)
	targets := make([]string, replicas)
	for i := range replicas {
		urls[i] = r.cluster.URL(i)
		targets[i] = urls[i] + "/metrics"
	}
	leader, err := r.waitLeader(ctx)
	if err != nil {
		return err
	}
	r.logf("cluster up: %s on 127.0.0.1, %d raft groups each, every replica on the legacy layout (%s unset in its env file); leader of group 0 %s",
		strings.Join(names, ", "), groups, lanes.FlagEnv, r.cluster.Name(leader))
	if leader, err = r.snapshots.align(ctx, leaderTimeout); err != nil {
		return err
	}
	slow := r.cluster.Name(slowFollower)
	r.logf("every group led by %s; the links to and from %s carry %d MiB/s (a shaped link, so a snapshot takes real time)", r.cluster.Name(leader), slow, linkBytesPerSecond>>20)
	if err := preload(ctx, r.cluster); err != nil {
		return err
	}
	r.logf("group %d preloaded with %d MiB, so each of its snapshots takes over a second to reach %s", snapshotGroup, preloadValues*preloadValueBytes>>20, slow)

	if r.store, err = query.NewEmbedded(ctx, targets, r.tm.Scrape, query.EmbeddedOptions{
		Client: &http.Client{Transport: r.client.Transport, Timeout: r.tm.Scrape},
	}); err != nil {
		return fmt.Errorf("start embedded metrics store: %w", err)
	}
	r.logf("embedded metrics store scraping every replica's /metrics every %s", r.tm.Scrape)

	loadCtx, cancel := context.WithCancel(ctx)
	r.loadCancel, r.loadDone = cancel, make(chan loadgen.Result, 1)
	go func() {
		res, _ := loadgen.Run(loadCtx, loadgen.Config{
			Targets:   urls,
			Rate:      loadRate,
			ValueSize: loadValueSize,
			Keys:      loadKeys,
		})
		r.loadDone <- res
	}()
	r.logf("write load: %d writes/s of %d B over %d keys in all %d groups", loadRate, loadValueSize, loadKeys, groups)
	snapCtx, snapCancel := context.WithCancel(ctx)
	r.snapCancel, r.snapDone = snapCancel, make(chan struct{})
	go func() {
		defer close(r.snapDone)
		r.snapshots.run(snapCtx)
	}()
	r.logf("a snapshot of group %d forced from its leader to %s every %s, while the other groups keep writing", snapshotGroup, slow, r.tm.SnapshotEvery)

	// The baseline starts once the store has a sample under load.
	if err := sleep(ctx, 2*r.tm.Scrape); err != nil {
		return err
	}
	r.sum = &Summary{Timing: r.tm, Before: Phase{Layout: lanes.ModeLegacy.String(), Replicas: names}}
	r.sum.Before.Window.Start = time.Now()
	r.logf("measuring the legacy layout for %s before any replica gets the flag", r.tm.Baseline)
	if err := sleep(ctx, r.tm.Baseline); err != nil {
		return err
	}
	r.sum.Before.Window.End = time.Now()

	plan, err := writePlan(planInput{Dir: r.dir, Names: names, HTTP: urls, Timing: r.tm, Verify: verifyTimeout, Restart: restartCommand, Commands: commandTimeout})
	if err != nil {
		return err
	}
	p, err := rollout.LoadPlan(plan)
	if err != nil {
		return fmt.Errorf("load the demo's own plan: %w", err)
	}
	if data, err := os.ReadFile(plan); err == nil {
		r.sum.Plan = string(data)
	}
	r.runner = &localRestarter{
		sh: rollout.LocalRunner{
			Timeout: p.Commands.Timeout,
			// The commands need only the basic tools; the process's own
			// environment stays out of them.
			Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"},
		},
		cluster: r.cluster,
		dir:     r.dir,
	}
	if r.cfg.InjectHeartbeatDrops {
		r.runner.inject = node.DropInjection{Lane: lanes.LaneHeartbeat, Every: HeartbeatDropEvery}
	}
	r.driver = &rollout.Driver{
		Plan:    p,
		Runner:  r.runner,
		Querier: r.store,
		Prober:  rollout.Prober{Plan: p, Runner: r.runner},
		Now:     time.Now,
		Log:     r.log,
	}
	if r.cfg.OnStart != nil {
		r.cfg.OnStart(plan, r.tm)
	}
	return nil
}

func (r *run) waitLeader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(leaderTimeout)
	for {
		i, why := r.cluster.Leader()
		if i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("no leader within %v: %s", leaderTimeout, why)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return -1, err
		}
	}
}

// walk advances the rollout the way an operator would run 'lanectl
// advance': after each enable, wait out the soak (showing progress), then
// advance again, until the rollout is complete or refused.
func (r *run) walk(ctx context.Context) error {
	for range maxAdvances {
		r.logf("lanectl advance")
		res, err := r.driver.Advance(ctx)
		if res != nil && res.Soak != nil && (res.Soak.Complete || res.Soak.Verdict == gates.Fail) {
			r.sum.Soaks = append(r.sum.Soaks, SoakSummary{
				Replicas: res.Judged, Verdict: res.Soak.Verdict, Reason: res.Soak.Reason,
				Window: res.Soak.Window, Failed: failedGates(*res.Soak),
			})
			if r.cfg.OnJudged != nil {
				r.cfg.OnJudged(Judgement{Replicas: res.Judged, NoBaseline: res.NoBaseline, Result: *res.Soak})
			}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil && res.Outcome == rollout.OutcomeComplete:
			return nil
		case err == nil:
			if err := r.soak(ctx); err != nil {
				return err
			}
		case errors.Is(err, rollout.ErrSoakFailed), errors.Is(err, rollout.ErrVerifyFailed), errors.Is(err, rollout.ErrRollbackFailed):
			return fmt.Errorf("%w: %w", ErrRefused, err)
		case errors.Is(err, rollout.ErrSoakPending) && res.Remaining > 0:
			if err := sleep(ctx, res.Remaining+2*r.tm.Scrape); err != nil {
				return err
			}
		case errors.Is(err, rollout.ErrSoakPending):
			return fmt.Errorf("%w: %w", ErrUndecided, err)
		default:
			return err
		}
	}
	return fmt.Errorf("the rollout did not finish after %d advances", maxAdvances)
}

// soak waits for the window of the batch enabled last, looking at its gates
// every Timing.Progress. It returns early when a gate already failed, so the
// next advance refuses at once, as 'lanectl soak' fails fast.
func (r *run) soak(ctx context.Context) error {
	st, err := rollout.LoadState(r.driver.Plan.StatePath)
	if err != nil {
		return err
	}
	batch, since := st.LastBatch()
	if len(batch) == 0 {
		return errors.New("advance enabled nothing: the journal has no enabled batch")
	}
	s, err := r.driver.Plan.DecideSoak(st, rollout.SoakQuestion{Canaries: batch, Start: since}, time.Now())
	if err != nil {
		return err
	}
	// Looks come every Timing.Progress; advance judges only after the store
	// has scraped past the window's end.
	s.Interval = r.tm.Progress
	judgeAt := s.Request.Window.End.Add(2 * r.tm.Scrape)
	r.logf("soaking %s until %s (%s)", strings.Join(batch, ", "), s.Request.Window.End.UTC().Format(time.RFC3339), r.tm.Soak)
	w := rollout.Watch{
		Querier: r.store,
		Soak:    s,
		Now:     time.Now,
		OnLook: func(res gates.Result) {
			if r.cfg.OnProgress != nil {
				r.cfg.OnProgress(Progress{Replicas: batch, Window: s.Request.Window, Elapsed: res.Window.Duration(), Result: res})
			}
		},
		OnError: func(err error, _ int) {
			r.logf("look at the soak failed (the verdict is advance's): %v", err)
		},
	}
	res, err := w.Run(ctx)
	if err != nil {
		return err
	}
	if res.Verdict == gates.Fail {
		r.logf("a gate failed before the window is over: advancing now")
		return nil
	}
	return sleep(ctx, time.Until(judgeAt))
}

// summarise fills the summary from the journal, the replicas' own metrics,
// the embedded store and the load.
func (r *run) summarise(ctx context.Context, walkErr error) (*Summary, error) {
	sum := r.sum
	sum.Verdict, sum.Reason = gates.Pass, "rollout complete: every replica has the flag and every soak passed"
	switch {
	case errors.Is(walkErr, ErrUndecided):
		sum.Verdict, sum.Reason = gates.Inconclusive, walkErr.Error()
	case walkErr != nil:
		sum.Verdict, sum.Reason = gates.Fail, walkErr.Error()
	}
	sum.Injected = r.runner.Injected()
	st, err := rollout.LoadState(r.driver.Plan.StatePath)
	if err != nil {
		return nil, err
	}
	var enabled []string
	for _, rep := range r.driver.Plan.Order() {
		rs := ReplicaSummary{Name: rep.Name, Stage: rep.Stage}
		if at, on := st.EnabledAt(rep.Name); on {
			rs.EnabledAt = at
			enabled = append(enabled, rep.Name)
		}
		if f := r.driver.Prober.Probe(ctx, rep, time.Now()).Flag; f.Known {
			on := f.Is(true)
			rs.FlagOn = &on
		}
		sum.Replicas = append(sum.Replicas, rs)
	}

	// After: from the last enable to the end of its soak window (or to
	// now, when the rollout stopped before it), over every replica that
	// had the flag then: all of them when the rollout completed.
	now := time.Now()
	if _, since := st.LastBatch(); !since.IsZero() {
		end := since.Add(r.tm.Soak)
		if now.Before(end) {
			end = now
		}
		sum.After = Phase{Window: gates.Window{Start: since, End: end}, Replicas: enabled, Layout: lanes.ModeFourLane.String()}
	}
	before, err := measure(ctx, r.store, sum.Before)
	if err != nil {
		return nil, err
	}
	sum.Before.LeaderChanges = before.leaderChanges
	var after phaseNumbers
	if len(sum.After.Replicas) > 0 && sum.After.Window.Duration() > 0 {
		if after, err = measure(ctx, r.store, sum.After); err != nil {
			return nil, err
		}
		sum.After.LeaderChanges = after.leaderChanges
	}
	sum.Lanes = laneRows(before, after)

	all := selector(sum.Before.Replicas)
	whole := promRange(now.Sub(sum.Before.Window.Start))
	lc, err := scalarAt(ctx, r.store, fmt.Sprintf(`max(increase(%s{%s}[%s]))`, targets.LanectlLeaderChanges, all, whole), now)
	if err != nil {
		return nil, err
	}
	sum.LeaderChanges = roundOrZero(lc)
	for i, at := range []time.Time{sum.Before.Window.Start, now} {
		t, err := scalarAt(ctx, r.store, fmt.Sprintf(`max(%s{%s})`, targets.LanectlTerm, all), at)
		if err != nil {
			return nil, err
		}
		sum.Terms[i] = roundOrZero(t)
	}

	r.stopSnapshots()
	sum.Transfers = r.transferSummary()
	r.loadCancel()
	sum.Load = <-r.loadDone
	r.loadCancel = nil
	return sum, nil
}

// roundOrZero rounds a count; no data (NaN) reads as none.
func roundOrZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return math.Round(v)
}

// close releases everything setUp made, newest first, and reports what
// could not be released.
func (r *run) close() error {
	var errs []error
	r.stopSnapshots()
	if r.loadCancel != nil {
		r.loadCancel()
		<-r.loadDone
	}
	if r.store != nil {
		errs = append(errs, r.store.Close())
	}
	if r.cluster != nil {
		errs = append(errs, r.cluster.Close())
	}
	r.client.CloseIdleConnections()
	if r.driver != nil {
		r.driver.Prober.CloseIdleConnections()
	}
	if r.dir != "" {
		errs = append(errs, os.RemoveAll(r.dir))
	}
	return errors.Join(errs...)
}

// stopSnapshots stops the snapshot loop, if it runs, and waits for it.
func (r *run) stopSnapshots() {
	if r.snapCancel != nil {
		r.snapCancel()
		<-r.snapDone
		r.snapCancel = nil
	}
}

func (r *run) transferSummary() TransferSummary {
	s := TransferSummary{
		Follower:           r.cluster.Name(slowFollower),
		Group:              snapshotGroup,
		Groups:             groups,
		LinkBytesPerSecond: linkBytesPerSecond,
	}
	s.Forced, s.Failed, s.LastError = r.snapshots.counts()
	s.Legacy, s.FourLane, s.Abandoned = r.trace.result()
	if l, f := s.Legacy.DeliveryP99, s.FourLane.DeliveryP99; l != nil && f != nil && *f > 0 {
		ratio := *l / *f
		s.Ratio = &ratio
	}
	return s
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
