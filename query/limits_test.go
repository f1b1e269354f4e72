package query_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
)

// hangingServer accepts every query and never answers it: it holds the
// request until the client hangs up, or the test ends. A real Prometheus
// cannot be made to do this, so httptest serves it. Each query's timeout
// parameter is sent on timeouts.
func hangingServer(t *testing.T) (srvURL string, timeouts <-chan string) {
	t.Helper()
	release := make(chan struct{})
	ch := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Reading the form lets the server notice the client hanging up.
		_ = r.ParseForm()
		select {
		case ch <- r.Form.Get("timeout"):
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	return srv.URL, ch
}

// TestPrometheusQueryTimeout: a server that never answers costs a query
// its timeout, without any deadline from the caller, and is told the
// timeout so it can stop too.
func TestPrometheusQueryTimeout(t *testing.T) {
	url, timeouts := hangingServer(t)
	const limit = 500 * time.Millisecond
	p, err := query.NewPrometheus(url, config.DefaultHTTPClientConfig, query.WithQueryTimeout(limit))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Query(context.Background(), "up", time.Now())
	if !errors.Is(err, query.ErrTimeout) {
		t.Fatalf("Query: got error %v, want ErrTimeout", err)
	}
	if want := "no answer within the 500ms query timeout"; !strings.Contains(err.Error(), want) {
		t.Errorf("Query error: got %q, want it to say %q", err, want)
	}
	sent := <-timeouts
	d, perr := model.ParseDuration(sent)
	if perr != nil || time.Duration(d) <= 0 || time.Duration(d) > limit {
		t.Errorf("timeout parameter: got %q (%v), want a Prometheus duration in (0, %s]", sent, perr, limit)
	}
}

// TestPrometheusResponseHeaderTimeout: the transport gives up on a server
// that has not started its answer, even when the query timeout is far off.
func TestPrometheusResponseHeaderTimeout(t *testing.T) {
	url, _ := hangingServer(t)
	p, err := query.NewPrometheus(url, config.DefaultHTTPClientConfig,
		query.WithQueryTimeout(time.Hour), query.WithResponseHeaderTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Query(context.Background(), "up", time.Now())
	if !errors.Is(err, query.ErrTimeout) || errors.Is(err, query.ErrUnreachable) {
		t.Fatalf("Query: got error %v, want ErrTimeout only", err)
	}
	if want := "no response headers within 300ms"; !strings.Contains(err.Error(), want) {
		t.Errorf("Query error: got %q, want it to say %q", err, want)
	}
}

// TestPrometheusTimeoutParameterReal: the timeout sent with every query is
// one a real Prometheus accepts, for a limit of whole seconds and one of
// minutes and seconds.
func TestPrometheusTimeoutParameterReal(t *testing.T) {
	srv := promtest.Start(t, promtest.Options{})
	for _, limit := range []time.Duration{query.DefaultQueryTimeout, 90 * time.Second} {
		p, err := query.NewPrometheus(srv.URL, config.DefaultHTTPClientConfig, query.WithQueryTimeout(limit))
		if err != nil {
			t.Fatal(err)
		}
		vec, _, err := p.Query(context.Background(), "vector(1)", time.Now())
		if err != nil || len(vec) != 1 || vec[0].Value != 1 {
			t.Errorf("query timeout %s: got %v, %v; want one sample of 1", limit, vec, err)
		}
	}
}

// TestPrometheusAnswerSizeLimit: an answer that never ends is cut at the
// size limit, and the memory it costs stays near that limit. A real
// Prometheus cannot be made to stream without end, so httptest does.
func TestPrometheusAnswerSizeLimit(t *testing.T) {
	// The stream stops at 512 MiB so that a client without a limit fails
	// this test instead of exhausting the machine.
	const streamCap = 512 << 20
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[`))
		chunk := []byte(strings.Repeat(`{"metric":{"node_id":"n1"},"value":[1700000000,"1"]},`, 1200))
		for sent := 0; sent < streamCap; sent += len(chunk) {
			select {
			case <-r.Context().Done():
				return
			case <-release:
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	defer close(release)

	t.Run("default limit, endless body", func(t *testing.T) {
		limit, opts := query.DefaultMaxAnswerBytes, []query.PrometheusOption(nil)
		if raceEnabled {
			// The race detector's shadow memory makes the peak several
			// times larger and says nothing about the limit: a smaller
			// limit keeps the test light, and the peak is not judged.
			limit = 8 << 20
			opts = append(opts, query.WithMaxAnswerBytes(limit))
		}
		p, err := query.NewPrometheus(srv.URL, config.DefaultHTTPClientConfig, opts...)
		if err != nil {
			t.Fatal(err)
		}
		before := procStatus(t, "VmRSS")
		resetPeakRSS(t)
		_, _, err = p.Query(context.Background(), "up", time.Now())
		peak := procStatus(t, "VmHWM")
		if !errors.Is(err, query.ErrBadResponse) {
			t.Fatalf("Query: got error %v, want ErrBadResponse", err)
		}
		if want := fmt.Sprintf("larger than the %d MiB limit", limit>>20); !strings.Contains(err.Error(), want) {
			t.Errorf("Query error: got %q, want it to say %q", err, want)
		}
		growth := peak - before
		t.Logf("VmRSS before the query %d MiB, peak during it %d MiB: grew %d MiB for a %d MiB limit", before>>20, peak>>20, growth>>20, limit>>20)
		if raceEnabled {
			return
		}
		// The API client reads into a bytes.Buffer, which doubles as it
		// grows, and the garbage of its earlier sizes waits for the
		// collector: about four times the limit at the peak. A reader
		// without the limit would peak at several times the 512 MiB.
		if bound := 6 * limit; growth > bound {
			t.Errorf("peak RSS grew %d MiB, want at most %d MiB", growth>>20, bound>>20)
		}
	})
	t.Run("declared length over the limit", func(t *testing.T) {
		big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(2<<20))
			w.WriteHeader(http.StatusOK)
		}))
		defer big.Close()
		p, err := query.NewPrometheus(big.URL, config.DefaultHTTPClientConfig, query.WithMaxAnswerBytes(1<<20))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = p.Query(context.Background(), "up", time.Now())
		if !errors.Is(err, query.ErrBadResponse) || !strings.Contains(err.Error(), "larger than the 1 MiB limit") {
			t.Fatalf("Query: got error %v, want ErrBadResponse naming the 1 MiB limit", err)
		}
	})
	t.Run("answer of exactly the limit", func(t *testing.T) {
		const answer = `{"status":"success","data":{"resultType":"vector","result":[]}}`
		exact := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(answer))
		}))
		defer exact.Close()
		p, err := query.NewPrometheus(exact.URL, config.DefaultHTTPClientConfig, query.WithMaxAnswerBytes(int64(len(answer))))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.Query(context.Background(), "up", time.Now()); err != nil {
			t.Fatalf("Query: got error %v, want an empty vector", err)
		}
	})
}

// procStatus reads a size field of /proc/self/status (VmRSS, the
// resident set size, or VmHWM, its peak) in bytes, after a collection has
// returned what it can to the system.
func procStatus(t *testing.T, field string) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s %q: %v", field, rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// resetPeakRSS sets VmHWM back to the current VmRSS (proc(5), clear_refs).
func resetPeakRSS(t *testing.T) {
	t.Helper()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}
