package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// EmbeddedJob is the job label the embedded store gives every target, as a
// Prometheus scrape config's job_name would.
const EmbeddedJob = "lanectl"

// DefaultStoreRetention is how long a store with a Dir keeps samples when
// EmbeddedOptions.Retention is zero: long enough for a soak of a week and
// a day to come back and judge it, short enough that the directory does
// not grow without bound over a rollout of many stages.
const DefaultStoreRetention = 8 * 24 * time.Hour

// ErrStoreBusy is returned when another lanectl process is writing the
// metrics store: the TSDB in EmbeddedOptions.Dir is locked by it.
var ErrStoreBusy = errors.New("metrics store is busy")

// EmbeddedOptions tune the embedded store. The zero value is usable.
type EmbeddedOptions struct {
	// Dir, when set, is where the store keeps its TSDB: created if missing
	// (0750), reopened with its history by the next store given the same
	// Dir, and kept by Close, so a later run can judge a window an earlier
	// one scraped. One process at a time can have it open (tsdb's lock
	// file); another gets ErrStoreBusy. Empty means a temporary directory
	// that Close deletes.
	Dir string
	// Retention is how long a store with a Dir keeps samples; zero means
	// DefaultStoreRetention. A temporary store keeps all it scraped.
	Retention time.Duration
	// Logger receives scrape failures at debug level; nil discards them.
	Logger *slog.Logger
	// Client fetches /metrics; nil means a client whose timeout is the
	// scrape interval, as Prometheus's scrape_timeout defaults to.
	Client *http.Client
	// Now is the clock that timestamps scrapes; nil means time.Now.
	Now func() time.Time
}

// Embedded scrapes targets into a private TSDB (in EmbeddedOptions.Dir, or
// a temporary directory) and evaluates PromQL over it with the upstream engine. Like Prometheus it adds
// job and instance labels, records up, and writes staleness markers for
// series that disappear, so the gates' queries give the answers a
// Prometheus scraping the same targets would.
type Embedded struct {
	*Engine
	db        *tsdb.DB
	dir       string
	temp      bool
	targets   []*scrapeTarget
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	err       error
}

// NewEmbedded starts scraping targets (full URLs of /metrics endpoints)
// every interval, until ctx is cancelled or Close is called. The first round
// of scrapes has happened when it returns, so a query can see every target
// that answered. Unreachable targets are not an error: they are recorded as
// up == 0, as Prometheus would.
func NewEmbedded(ctx context.Context, targets []string, interval time.Duration, opts EmbeddedOptions) (*Embedded, error) {
	if len(targets) == 0 {
		return nil, errors.New("embedded store: no targets")
	}
	if interval <= 0 {
		return nil, fmt.Errorf("embedded store: scrape interval %v must be positive", interval)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: interval}
	}
	seen := map[string]bool{}
	var sts []*scrapeTarget
	for _, raw := range targets {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("embedded store: target %s: want an http(s) URL of a /metrics endpoint", RedactURL(raw))
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("embedded store: target %s listed twice", RedactURL(raw))
		}
		seen[u.String()] = true
		sts = append(sts, newScrapeTarget(u, opts.Client, opts.Logger))
	}

	db, dir, err := openTSDB(opts)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	e := &Embedded{Engine: NewEngine(db, opts.Logger), db: db, dir: dir, temp: opts.Dir == "", targets: sts, cancel: cancel}

	// One synchronous round, so the caller's first query has data.
	var first sync.WaitGroup
	for _, t := range sts {
		first.Go(func() { _ = t.scrape(sctx, db, opts.Now()) })
	}
	first.Wait()

	for _, t := range sts {
		e.wg.Go(func() {
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-sctx.Done():
					return
				case <-tick.C:
					_ = t.scrape(sctx, db, opts.Now())
				}
			}
		})
	}
	return e, nil
}

// openTSDB opens the store's TSDB in opts.Dir, or in a new temporary
// directory when that is empty, and returns the directory it used.
func openTSDB(opts EmbeddedOptions) (*tsdb.DB, string, error) {
	tsdbOpts := tsdb.DefaultOptions()
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "lanectl-embedded-"); err != nil {
			return nil, "", fmt.Errorf("embedded store: %w", err)
		}
		tsdbOpts.RetentionDuration = 0
		db, err := tsdb.Open(dir, opts.Logger, nil, tsdbOpts, nil)
		if err != nil {
			return nil, "", errors.Join(fmt.Errorf("embedded store: open tsdb: %w", err), os.RemoveAll(dir))
		}
		return db, dir, nil
	}
	if opts.Retention < 0 {
		return nil, "", fmt.Errorf("embedded store: retention %v must not be negative", opts.Retention)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", fmt.Errorf("embedded store: create metrics store: %w", err)
	}
	retention := opts.Retention
	if retention == 0 {
		retention = DefaultStoreRetention
	}
	tsdbOpts.RetentionDuration = retention.Milliseconds()
	// As Prometheus sizes them: blocks of up to a tenth of the retention,
	// so days of history are a few dozen directories, not one per 2h.
	tsdbOpts.MaxBlockDuration = max(retention.Milliseconds()/10, tsdb.DefaultBlockDuration)
	db, err := tsdb.Open(dir, opts.Logger, nil, tsdbOpts, nil)
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		// tsdb holds a non-blocking flock on <dir>/lock for as long as the
		// DB is open; the kernel drops it when its holder exits, so a lock
		// file left by a killed run never gets here.
		return nil, "", fmt.Errorf("embedded store: %w: %s is locked by another lanectl process that is writing it (probably a live 'lanectl soak'); wait for it to end or stop it, then retry", ErrStoreBusy, dir)
	case err != nil:
		return nil, "", fmt.Errorf("embedded store: open tsdb in %s: %w", dir, err)
	}
	return db, dir, nil
}

// Dir is the directory holding the store's TSDB.
func (e *Embedded) Dir() string { return e.dir }

// HistoryStart is the time of the oldest sample in the store: a store
// reopened on a Dir holds samples from before it started. It is the zero
// time when the store holds nothing.
func (e *Embedded) HistoryStart() time.Time {
	ms, err := e.db.StartTime()
	if err != nil || ms == math.MaxInt64 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// Close stops scraping and closes the TSDB, which keeps every committed
// sample for the next store on the same Dir; a temporary store's files are
// deleted. It is safe to call more than once.
func (e *Embedded) Close() error {
	e.closeOnce.Do(func() {
		e.cancel()
		e.wg.Wait()
		e.err = errors.Join(e.Engine.Close(), e.db.Close())
		if e.temp {
			e.err = errors.Join(e.err, os.RemoveAll(e.dir))
		}
	})
	return e.err
}

// newScrapeTarget is the scrape target for u.
func newScrapeTarget(u *url.URL, client *http.Client, logger *slog.Logger) *scrapeTarget {
	return &scrapeTarget{url: u.String(), name: u.Redacted(), instance: u.Host, client: client, logger: logger, prev: map[string]labels.Labels{}}
}

type scrapeTarget struct {
	url string
	// name is url without its password, for logs and errors.
	name     string
	instance string
	client   *http.Client
	logger   *slog.Logger
	// prev holds the series of the last successful scrape, keyed by their
	// label string, so vanished ones get a staleness marker.
	prev map[string]labels.Labels
	// prevOK and prevTs describe the previous scrape: a counter absent from
	// a successful one and present now was created in between, so it
	// started from zero then.
	prevOK bool
	prevTs int64
}

// scrape fetches the target once and stores what it exported at now. It
// returns the fetch error, which is also recorded as up == 0.
func (t *scrapeTarget) scrape(ctx context.Context, app storage.Appendable, now time.Time) error {
	ts := now.UnixMilli()
	fams, err := t.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		// The store is closing. Like Prometheus shutting down, record
		// nothing: not a down target nor stale series, which a store
		// reopened on the same Dir would read as an outage.
		return err
	}
	a := app.Appender(ctx)
	cur := map[string]labels.Labels{}
	if err != nil {
		t.logger.Debug("scrape failed", "target", t.name, "err", err)
	} else {
		for _, mf := range fams {
			for _, s := range flatten(mf) {
				lbls := t.targetLabels(s.labels)
				sts := ts
				if s.timestampMs != 0 {
					sts = s.timestampMs
				}
				key := lbls.String()
				if _, known := t.prev[key]; s.counter && t.prevOK && !known && sts > t.prevTs+1 {
					// Record the zero the counter was created with, as
					// Prometheus's created-timestamp zero ingestion does, so
					// increase() counts the events that created the series.
					_, _ = a.Append(0, lbls, t.prevTs+1, 0)
				}
				if _, aerr := a.Append(0, lbls, sts, s.value); aerr != nil {
					t.logger.Debug("append failed", "target", t.name, "series", lbls.String(), "err", aerr)
					continue
				}
				cur[key] = lbls
			}
		}
	}
	for k, lbls := range t.prev {
		if _, ok := cur[k]; !ok {
			_, _ = a.Append(0, lbls, ts, math.Float64frombits(value.StaleNaN))
		}
	}
	up := 0.0
	if err == nil {
		up = 1
	}
	_, _ = a.Append(0, labels.FromStrings(model.MetricNameLabel, "up", model.JobLabel, EmbeddedJob, model.InstanceLabel, t.instance), ts, up)
	if cerr := a.Commit(); cerr != nil {
		t.logger.Debug("commit failed", "target", t.name, "err", cerr)
		return errors.Join(err, cerr)
	}
	t.prev = cur
	t.prevOK = err == nil
	t.prevTs = ts
	return err
}

func (t *scrapeTarget) fetch(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, err
	}
	// allow-utf-8 keeps label names such as service.name as exported
	// instead of escaped to service_name, as Prometheus 3 scrapes them.
	req.Header.Set("Accept", "text/plain;version=0.0.4;escaping=allow-utf-8")
	resp, err := t.client.Do(req)
	if err != nil {
		// net/http's error repeats the URL with the password as "***";
		// the target's own name says which one it was.
		return nil, fmt.Errorf("GET %s: %w", t.name, URLErrorCause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: %s", t.name, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", t.name, err)
	}
	return fams, nil
}

// targetLabels adds job and instance; labels the target itself set under
// those names are kept as exported_job / exported_instance, as Prometheus
// does with honor_labels: false.
func (t *scrapeTarget) targetLabels(m map[string]string) labels.Labels {
	for _, k := range []string{model.JobLabel, model.InstanceLabel} {
		if v, ok := m[k]; ok {
			m["exported_"+k] = v
		}
	}
	m[model.JobLabel] = EmbeddedJob
	m[model.InstanceLabel] = t.instance
	return labels.FromMap(m)
}

type flatSample struct {
	counter     bool
	labels      map[string]string
	value       float64
	timestampMs int64
}

// flatten expands one metric family into the float series Prometheus
// stores for it: histograms into _bucket/_sum/_count, summaries into
// quantiles plus _sum/_count.
func flatten(mf *dto.MetricFamily) []flatSample {
	name := mf.GetName()
	var out []flatSample
	for _, m := range mf.GetMetric() {
		base := func(metric string, extra ...string) map[string]string {
			l := map[string]string{model.MetricNameLabel: metric}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(extra); i += 2 {
				l[extra[i]] = extra[i+1]
			}
			return l
		}
		add := func(l map[string]string, v float64) {
			out = append(out, flatSample{labels: l, value: v, timestampMs: m.GetTimestampMs()})
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(base(name), m.GetCounter().GetValue())
			out[len(out)-1].counter = true
		case dto.MetricType_GAUGE:
			add(base(name), m.GetGauge().GetValue())
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				add(base(name, model.QuantileLabel, formatFloat(q.GetQuantile())), q.GetValue())
			}
			add(base(name+"_sum"), s.GetSampleSum())
			add(base(name+"_count"), float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			infSeen := false
			for _, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					infSeen = true
				}
				add(base(name+"_bucket", model.BucketLabel, formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
			}
			if !infSeen {
				add(base(name+"_bucket", model.BucketLabel, "+Inf"), float64(h.GetSampleCount()))
			}
			add(base(name+"_sum"), h.GetSampleSum())
			add(base(name+"_count"), float64(h.GetSampleCount()))
		default:
			add(base(name), m.GetUntyped().GetValue())
		}
	}
	return out
}

// formatFloat writes le and quantile values the way Prometheus's text
// exposition does, so bucket labels match a real scrape.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
