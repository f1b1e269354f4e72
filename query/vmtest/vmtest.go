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
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/textparse"

	"github.com/lanectl/lanectl/internal/testport"
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
	if _, err := os.Stat(Bin); err != nil {
		t.Fatalf("vmtest: %s is missing (apt-get install victoria-metrics): %v", Bin, err)
	}
	dir := t.TempDir()
	var lastErr error
	// The port is reserved (see testport), but a process outside the test
	// run may still bind it first, so a start that dies early is retried.
	for attempt := 0; attempt < 3; attempt++ {
		s, stop, err := start(dir)
		if err == nil {
			t.Cleanup(stop)
			return s
		}
		lastErr = err
	}
	t.Fatalf("vmtest: %v", lastErr)
	return nil
}

func start(dir string) (*Server, func(), error) {
	port, err := testport.Reserve()
	if err != nil {
		return nil, nil, err
	}
	logPath := filepath.Join(dir, "victoria-metrics.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		_ = port.Release()
		return nil, nil, err
	}
	cmd := exec.Command(Bin,
		"-storageDataPath="+filepath.Join(dir, "data"),
		"-httpListenAddr="+port.Addr(),
		// History may be imported at any age; keep all of it.
		"-retentionPeriod=100y",
		// By default the newest 30 s are hidden from queries and answers
		// are cached; a test reads what it has just imported.
		"-search.latencyOffset=0s",
		"-search.disableCache",
		"-loggerLevel=ERROR",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		_ = port.Release()
		return nil, nil, fmt.Errorf("start %s: %w", Bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			_ = port.Release()
		})
	}
	s := &Server{URL: "http://" + port.Addr(), Dir: dir}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			_ = port.Release()
			b, _ := os.ReadFile(logPath)
			return nil, nil, fmt.Errorf("victoria-metrics exited before it was ready (%v); log:\n%s", err, b)
		default:
		}
		if resp, err := client.Get(s.URL + "/health"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("victoria-metrics on %s not ready after 60s", port.Addr())
		}
		time.Sleep(50 * time.Millisecond)
	}
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
