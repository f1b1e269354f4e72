package elastickvtest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// Growing serves a capture whose traffic counters grow: the n-th scrape
// since the capture was (re)loaded shows each counter it was told to grow
// at n times its captured value, everything else as captured. Rates and ratios over a window are then the
// captured ones, so gates over rates have traffic to judge, while names,
// labels and every other value are the real system's. Switching to
// another capture starts the counters again from one, as the restart of a
// real process would.
type Growing struct {
	URL string

	grow map[string]bool

	mu       sync.Mutex
	families map[string]*dto.MetricFamily
	scrapes  int
}

// ServeGrowing starts a Growing server of capture name on 127.0.0.1,
// growing the counters named in grow; it stops when the test ends.
func ServeGrowing(t testing.TB, name string, grow ...string) *Growing {
	t.Helper()
	g, err := NewGrowing(name, grow...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// NewGrowing is a Growing of capture name, growing the counters named in
// grow, for a caller that serves it itself (behind a token, say).
func NewGrowing(name string, grow ...string) (*Growing, error) {
	g := &Growing{grow: map[string]bool{}}
	for _, c := range grow {
		g.grow[c] = true
	}
	if err := g.Switch(name); err != nil {
		return nil, err
	}
	return g, nil
}

// Switch serves capture name from the next scrape on, its counters from
// one capture's worth again.
func (g *Growing) Switch(name string) error {
	body, err := Capture(name)
	if err != nil {
		return err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("parse capture %q: %w", name, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.families, g.scrapes = fams, 0
	return nil
}

// ServeHTTP answers a scrape with the capture, its counters grown once more.
func (g *Growing) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	g.mu.Lock()
	g.scrapes++
	n := float64(g.scrapes)
	var out bytes.Buffer
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	var err error
	for _, f := range g.families {
		if f.GetType() == dto.MetricType_COUNTER && g.grow[f.GetName()] {
			f = proto.Clone(f).(*dto.MetricFamily)
			for _, m := range f.Metric {
				m.Counter.Value = proto.Float64(m.Counter.GetValue() * n)
			}
		}
		if err = enc.Encode(f); err != nil {
			break
		}
	}
	g.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	_, _ = w.Write(out.Bytes())
}
