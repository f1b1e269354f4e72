// Package promtest starts a real Prometheus server for a test: the
// /usr/bin/prometheus binary (Debian package), on a free 127.0.0.1 port,
// with its own data directory and a generated configuration that scrapes
// the given targets. History can be written into the data directory with
// promtool tsdb create-blocks-from openmetrics before the server starts, so
// a test can query 24 hours of data seconds after it begins.
//
// It is a test helper: it calls t.Fatal on failure, and the server is
// stopped and its files removed by t.Cleanup. It must never be imported by
// non-test code.
package promtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/internal/testserver"
)

// Binaries the helper runs; CI installs the Debian prometheus package.
const (
	PrometheusBin = "/usr/bin/prometheus"
	PromtoolBin   = "/usr/bin/promtool"
)

// Job is the job label the generated config gives every scraped target,
// the same as the embedded store's, so queries match either.
const Job = "lanectl"

// Options say what the server scrapes and what history it starts with.
type Options struct {
	// Targets are full URLs of /metrics endpoints, e.g.
	// http://127.0.0.1:9101/metrics. They must share scheme and path.
	Targets []string
	// ScrapeInterval defaults to 1s.
	ScrapeInterval time.Duration
	// Backfill is an OpenMetrics file (see OpenMetrics) written into the
	// data directory with promtool before the server starts.
	Backfill string
	// RuleFiles are Prometheus rule files the server loads (rule_files),
	// evaluated every ScrapeInterval.
	RuleFiles []string
	// BearerTokenFile, when set, is sent with every scrape (as elastickv's
	// --metricsToken requires).
	BearerTokenFile string
}

// Server is a running Prometheus.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Dir holds prometheus.yml, the data directory and prometheus.log.
	Dir string
}

// Start runs a Prometheus for t and waits until it is ready to answer
// queries. It is stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, stop, err := Launch(t.TempDir(), opts)
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	t.Cleanup(stop)
	return s
}

// Launch is Start for callers without a testing.TB (testscript commands):
// it runs Prometheus with its files under dir and returns a function that
// stops it.
func Launch(dir string, opts Options) (*Server, func(), error) {
	for _, bin := range []string{PrometheusBin, PromtoolBin} {
		if _, err := os.Stat(bin); err != nil {
			return nil, nil, fmt.Errorf("%s is missing (install the Debian prometheus package: apt-get install prometheus): %w", bin, err)
		}
	}
	if opts.ScrapeInterval <= 0 {
		opts.ScrapeInterval = time.Second
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, nil, err
	}
	if opts.Backfill != "" {
		if err := BackfillDir(opts.Backfill, data); err != nil {
			return nil, nil, err
		}
	}
	cfg, err := config(opts)
	if err != nil {
		return nil, nil, err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, nil, err
	}
	p, err := testserver.Launch(testserver.Spec{
		Name: "prometheus", Bin: PrometheusBin, Package: "prometheus", Dir: dir,
		Args: func(addr string) []string {
			return []string{
				"--config.file=" + cfgPath,
				"--storage.tsdb.path=" + data,
				// History may be backfilled at any age; keep all of it.
				"--storage.tsdb.retention.time=100y",
				"--web.listen-address=" + addr,
				"--log.level=warn",
			}
		},
		ReadyPath: "/-/ready",
	})
	if err != nil {
		return nil, nil, err
	}
	return &Server{URL: p.URL, Dir: dir}, p.Stop, nil
}

func config(opts Options) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n", opts.ScrapeInterval, opts.ScrapeInterval)
	if len(opts.RuleFiles) > 0 {
		fmt.Fprintf(&b, "  evaluation_interval: %s\nrule_files:\n", opts.ScrapeInterval)
		for _, f := range opts.RuleFiles {
			fmt.Fprintf(&b, "  - %s\n", strconv.Quote(f))
		}
	}
	if len(opts.Targets) == 0 {
		return b.String(), nil
	}
	var scheme, path string
	var hosts []string
	for i, raw := range opts.Targets {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", fmt.Errorf("target %q is not a URL", raw)
		}
		if i == 0 {
			scheme, path = u.Scheme, u.Path
		} else if u.Scheme != scheme || u.Path != path {
			return "", fmt.Errorf("targets must share scheme and path: %q vs %s://…%s", raw, scheme, path)
		}
		hosts = append(hosts, strconv.Quote(u.Host))
	}
	if path == "" {
		path = "/metrics"
	}
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %s\n    scheme: %s\n    metrics_path: %s\n    static_configs:\n      - targets: [%s]\n",
		Job, scheme, strconv.Quote(path), strings.Join(hosts, ", "))
	if opts.BearerTokenFile != "" {
		fmt.Fprintf(&b, "    authorization:\n      credentials_file: %s\n", strconv.Quote(opts.BearerTokenFile))
	}
	return b.String(), nil
}

// Backfill turns the OpenMetrics file at src into TSDB blocks in dataDir
// with promtool, as an operator importing history would.
func Backfill(t testing.TB, src, dataDir string) {
	t.Helper()
	if err := BackfillDir(src, dataDir); err != nil {
		t.Fatalf("promtest: %v", err)
	}
}

// BackfillDir is Backfill returning its error.
func BackfillDir(src, dataDir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, PromtoolBin, "tsdb", "create-blocks-from", "openmetrics", src, dataDir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("promtool tsdb create-blocks-from openmetrics %s: %w\n%s", src, err, out)
	}
	return nil
}

// OpenMetrics writes a backfill file. Families must be declared before
// their samples, and each family's samples written together (OpenMetrics
// does not allow a family to be split); within a series, samples go in time
// order.
type OpenMetrics struct {
	f   *os.File
	w   *bufio.Writer
	err error
}

// CreateOpenMetrics creates the file at path.
func CreateOpenMetrics(path string) (*OpenMetrics, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &OpenMetrics{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

// Family declares a metric family: typ is counter, gauge or unknown. For a
// counter, name is the family name without _total.
func (o *OpenMetrics) Family(name, typ string) {
	o.printf("# TYPE %s %s\n", name, typ)
}

// Sample writes one sample. series is the name with its braced labels,
// e.g. elastickv_raft_term{node_id="n1"}.
func (o *OpenMetrics) Sample(series string, ts time.Time, v float64) {
	o.printf("%s %s %s\n", series, formatValue(v), strconv.FormatFloat(float64(ts.UnixMilli())/1000, 'f', -1, 64))
}

// Close ends the file with # EOF.
func (o *OpenMetrics) Close() error {
	o.printf("# EOF\n")
	return errors.Join(o.err, o.w.Flush(), o.f.Close())
}

func (o *OpenMetrics) printf(format string, args ...any) {
	if o.err != nil {
		return
	}
	_, o.err = fmt.Fprintf(o.w, format, args...)
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
