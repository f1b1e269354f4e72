// Package vmtest starts a real VictoriaMetrics server for a test: the
// /usr/bin/victoria-metrics binary (Debian package victoria-metrics), on a
// reserved 127.0.0.1 port, with its own data directory. History is written
// through its import API, from the same OpenMetrics files promtest
// backfills into Prometheus, so one test can hold the same samples in both.
//
// It is a test helper: it calls t.Fatal on failure, and the server is
// stopped and its files removed by t.Cleanup. It must never be imported by
// non-test code.
package vmtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/lanectl/lanectl/internal/testserver"
)

// Bin is the server binary; CI installs the Debian victoria-metrics package.
const Bin = "/usr/bin/victoria-metrics"

// Server is a running VictoriaMetrics.
type Server struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:40123.
	URL string
	// Dir holds the data directory and victoria-metrics.log.
	Dir string
}

// Start runs a VictoriaMetrics for t and waits until it answers. It is
// stopped when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	p, err := testserver.Launch(testserver.Spec{
		Name: "victoria-metrics", Bin: Bin, Package: "victoria-metrics", Dir: dir,
		Args: func(addr string) []string {
			return []string{
				"-storageDataPath=" + filepath.Join(dir, "data"),
				"-httpListenAddr=" + addr,
				// History may be imported at any age; keep all of it.
				"-retentionPeriod=100y",
				// By default the newest 30 s are hidden from queries and
				// answers are cached; a test reads what it has just imported.
				"-search.latencyOffset=0s",
				"-search.disableCache",
				"-loggerLevel=ERROR",
			}
		},
		ReadyPath: "/health",
	})
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	t.Cleanup(p.Stop)
	return &Server{URL: p.URL, Dir: dir}
}

// ImportOpenMetrics writes every sample of an OpenMetrics file (as
// promtest.WriteHistory makes them) through the JSON import API and flushes,
// so queries see them at once. Prometheus' own parser reads the file.
func (s *Server) ImportOpenMetrics(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.importOpenMetrics(b); err != nil {
		t.Fatalf("vmtest: import %s: %v", path, err)
	}
}

// importLine is one series of /api/v1/import's JSON lines.
type importLine struct {
	Metric     map[string]string `json:"metric"`
	Values     []float64         `json:"values"`
	Timestamps []int64           `json:"timestamps"`
}

func (s *Server) importOpenMetrics(b []byte) error {
	p := textparse.NewOpenMetricsParser(b, labels.NewSymbolTable())
	series := map[string]*importLine{}
	var order []string
	for {
		e, err := p.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if e != textparse.EntrySeries {
			continue
		}
		_, ts, v := p.Series()
		if ts == nil {
			return errors.New("a sample has no timestamp")
		}
		if math.IsNaN(v) {
			continue
		}
		var ls labels.Labels
		p.Labels(&ls)
		key := ls.String()
		l, ok := series[key]
		if !ok {
			l = &importLine{Metric: ls.Map()}
			series[key] = l
			order = append(order, key)
		}
		l.Values = append(l.Values, v)
		l.Timestamps = append(l.Timestamps, *ts)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	for _, k := range order {
		if err := enc.Encode(series[k]); err != nil {
			return err
		}
	}
	if err := s.post("/api/v1/import", &body); err != nil {
		return err
	}
	return s.post("/internal/force_flush", nil)
}

func (s *Server) post(path string, body io.Reader) error {
	resp, err := http.Post(s.URL+path, "application/json", body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, msg)
	}
	return nil
}
