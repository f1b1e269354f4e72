package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// VictoriaMetrics answers PromQL for a VictoriaMetrics server without
// asking it to evaluate PromQL: VictoriaMetrics evaluates MetricsQL, whose
// increase() does not extrapolate and counts a series' first sample
// differently, and whose subqueries and lookbacks are aligned differently,
// so the same gate gives other numbers there. Instead, Prometheus' own
// engine evaluates every query here, reading the raw samples each selector
// needs from VictoriaMetrics' export API (/api/v1/export). A gate then has
// the same value on VictoriaMetrics as on a Prometheus holding the same
// samples, by construction.
type VictoriaMetrics struct {
	url    string
	client *http.Client
	engine *Engine
	// timeout bounds each query, all its exports included.
	timeout time.Duration
	// maxExport bounds the raw samples one selector may bring back.
	maxExport int64
}

// DefaultMaxExportBytes bounds one export answer: a day of 15 s samples
// for a few thousand series.
const DefaultMaxExportBytes = 256 << 20

// NewVictoriaMetrics returns a querier for the VictoriaMetrics server (or
// vmselect path) at rawURL, e.g. http://vm:8428 or
// http://vmselect:8481/select/0/prometheus. The query timeout and the
// response header timeout of opts apply as they do to Prometheus; an
// answer's size is bounded per export at DefaultMaxExportBytes, since raw
// samples are larger than a gate's answer.
func NewVictoriaMetrics(rawURL string, cfg config.HTTPClientConfig, opts ...PrometheusOption) (*VictoriaMetrics, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("victoriametrics url %s: want http(s)://host[:port][/path]", RedactURL(rawURL))
	}
	lim := newPrometheusLimits(opts)
	rt, err := config.NewRoundTripperFromConfig(cfg, "lanectl")
	if err != nil {
		return nil, fmt.Errorf("victoriametrics http_config: %w", err)
	}
	client := &http.Client{Transport: &boundedTransport{next: rt, headerTimeout: lim.headerTimeout, maxBytes: DefaultMaxExportBytes}}
	v := &VictoriaMetrics{url: strings.TrimRight(u.String(), "/"), client: client, timeout: lim.queryTimeout, maxExport: DefaultMaxExportBytes}
	v.engine = NewEngine(exportQueryable{v}, nil)
	return v, nil
}

// URL is the server's base URL, with any password redacted.
func (v *VictoriaMetrics) URL() string { return RedactURL(v.url) }

// Query evaluates expr at time at with Prometheus' engine over the raw
// samples the server exports.
func (v *VictoriaMetrics) Query(ctx context.Context, expr string, at time.Time) (Vector, Warnings, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, v.timeout, errQueryTimeout)
	defer cancel()
	vec, warns, err := v.engine.Query(ctx, expr, at)
	if err != nil && errors.Is(context.Cause(ctx), errQueryTimeout) {
		return nil, warns, fmt.Errorf("query %s: %w: no answer within the %s query timeout", v.URL(), ErrTimeout, v.timeout)
	}
	return vec, warns, err
}

// Close stops the engine.
func (v *VictoriaMetrics) Close() error { return v.engine.Close() }

// IsVictoriaMetrics asks the server at rawURL whether it serves
// VictoriaMetrics' raw export API; Prometheus, Thanos and Mimir answer 404.
func IsVictoriaMetrics(ctx context.Context, rawURL string, cfg config.HTTPClientConfig) (bool, error) {
	client, err := config.NewClientFromConfig(cfg, "lanectl")
	if err != nil {
		return false, fmt.Errorf("http config: %w", err)
	}
	now := time.Now()
	u := strings.TrimRight(rawURL, "/") + "/api/v1/export?" + url.Values{
		"match[]": {`{__name__="lanectl_backend_probe"}`},
		"start":   {formatUnix(now.Add(-time.Minute).UnixMilli())},
		"end":     {formatUnix(now.UnixMilli())},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("probe %s: %w", RedactURL(rawURL), err)
	}
	resp, err := client.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		return false, fmt.Errorf("probe %s: %w", RedactURL(rawURL), ctx.Err())
	case err != nil:
		return false, fmt.Errorf("probe %s: %w: %w", RedactURL(rawURL), ErrUnreachable, URLErrorCause(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode == http.StatusOK, nil
}

// exportQueryable is the storage the engine reads: every Select becomes one
// export request for its matchers and time range.
type exportQueryable struct{ vm *VictoriaMetrics }

func (q exportQueryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return exportQuerier{vm: q.vm, mint: mint, maxt: maxt}, nil
}

type exportQuerier struct {
	vm         *VictoriaMetrics
	mint, maxt int64
}

func (q exportQuerier) Select(ctx context.Context, _ bool, hints *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	mint, maxt := q.mint, q.maxt
	if hints != nil {
		mint, maxt = hints.Start, hints.End
	}
	series, err := q.vm.export(ctx, ms, mint, maxt)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	return &listSeriesSet{series: series, i: -1}
}

// LabelValues and LabelNames are not needed to evaluate a query.
func (q exportQuerier) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, errors.New("label values are not read from victoriametrics")
}

func (q exportQuerier) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, errors.New("label names are not read from victoriametrics")
}

func (q exportQuerier) Close() error { return nil }

// exportLine is one series of /api/v1/export's JSON-lines answer.
type exportLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

// export reads the raw samples of every series matching ms in [mint, maxt]
// (milliseconds), sorted by labels as the engine expects.
func (v *VictoriaMetrics) export(ctx context.Context, ms []*labels.Matcher, mint, maxt int64) ([]storage.Series, error) {
	sel := make([]string, len(ms))
	for i, m := range ms {
		sel[i] = m.String()
	}
	match := "{" + strings.Join(sel, ",") + "}"
	u := v.url + "/api/v1/export?" + url.Values{
		"match[]": {match},
		"start":   {formatUnix(mint)},
		"end":     {formatUnix(maxt)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", match, err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("export %s: %w: %w", match, ErrTimeout, URLErrorCause(err))
		case ctx.Err() != nil:
			return nil, fmt.Errorf("export %s: %w", match, ctx.Err())
		}
		return nil, fmt.Errorf("export %s from %s: %w: %w", match, v.URL(), ErrUnreachable, URLErrorCause(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("export %s: %w: status %d: %s", match, ErrBadResponse, resp.StatusCode, firstLine(string(body), 200))
	}
	body := &io.LimitedReader{R: resp.Body, N: v.maxExport + 1}
	dec := json.NewDecoder(body)
	var out []storage.Series
	for {
		var l exportLine
		err := dec.Decode(&l)
		if errors.Is(err, io.EOF) {
			break
		}
		if body.N <= 0 {
			return nil, fmt.Errorf("export %s: %w: answer larger than %d MiB", match, ErrBadResponse, v.maxExport>>20)
		}
		if err != nil {
			return nil, fmt.Errorf("export %s: %w: %w", match, ErrBadResponse, err)
		}
		if len(l.Values) != len(l.Timestamps) {
			return nil, fmt.Errorf("export %s: %w: %d values for %d timestamps", match, ErrBadResponse, len(l.Values), len(l.Timestamps))
		}
		out = append(out, newFloatSeries(labels.FromMap(l.Metric), l.Timestamps, l.Values))
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return out, nil
}

// newFloatSeries sorts the samples by time and keeps one per timestamp.
func newFloatSeries(ls labels.Labels, ts []int64, vs []float64) storage.Series {
	samples := make(chunks.SampleSlice, 0, len(ts))
	idx := make([]int, len(ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return int(ts[a] - ts[b]) })
	for _, i := range idx {
		if n := len(samples); n > 0 && samples[n-1].T() == ts[i] {
			continue
		}
		samples = append(samples, floatSample{t: ts[i], f: vs[i]})
	}
	return storage.NewListSeries(ls, samples)
}

// floatSample is one exported sample.
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) ST() int64                     { return 0 }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

// listSeriesSet iterates over series already in memory.
type listSeriesSet struct {
	series []storage.Series
	i      int
}

func (s *listSeriesSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *listSeriesSet) At() storage.Series                { return s.series[s.i] }
func (s *listSeriesSet) Err() error                        { return nil }
func (s *listSeriesSet) Warnings() annotations.Annotations { return nil }

// formatUnix writes milliseconds as the seconds VictoriaMetrics takes.
func formatUnix(ms int64) string {
	return strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)
}
