package gates_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/node/transport"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// stallSwitch holds heartbeat-lane writes to one peer while it is on: the
// lane's queue fills and the dispatcher drops, as it would behind a wedged
// connection.
type stallSwitch struct {
	peer    atomic.Uint64 // 0: nothing stalled
	mu      sync.Mutex
	release chan struct{}
}

func newStallSwitch() *stallSwitch { return &stallSwitch{release: make(chan struct{})} }

func (s *stallSwitch) on(peer uint64) {
	s.mu.Lock()
	s.release = make(chan struct{})
	s.mu.Unlock()
	s.peer.Store(peer)
}

func (s *stallSwitch) off() {
	s.peer.Store(0)
	s.mu.Lock()
	close(s.release)
	s.mu.Unlock()
}

func (s *stallSwitch) dial(ctx context.Context, peer uint64, lane lanes.Lane, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || lane != lanes.LaneHeartbeat {
		return c, err
	}
	return &stallConn{Conn: c, sw: s, peer: peer}, nil
}

type stallConn struct {
	net.Conn
	sw   *stallSwitch
	peer uint64
}

func (c *stallConn) Write(b []byte) (int, error) {
	if c.sw.peer.Load() == c.peer {
		c.sw.mu.Lock()
		rel := c.sw.release
		c.sw.mu.Unlock()
		<-rel
	}
	return c.Conn.Write(b)
}

// TestLiveCluster scrapes a real 3-replica cluster (n2 with the flag, n1 and
// n3 without) with a real Prometheus and with the embedded store, and
// judges two short windows: a healthy one, which passes, and one with
// heartbeat-lane drops on the canary, which fails. Both backends must agree.
func TestLiveCluster(t *testing.T) {
	sw := newStallSwitch()
	c := nodetest.StartCluster(t, 3, nodetest.Options{
		Env:          []nodetest.Env{nodetest.Legacy(), nodetest.FourLane(), nodetest.Legacy()},
		TickInterval: 5 * time.Millisecond,
		ElectionTick: 100,
		Transport:    transport.Config{Dial: sw.dial},
	})
	leader := c.WaitLeader(20 * time.Second)
	var metricsURLs []string
	for _, u := range c.URLs() {
		metricsURLs = append(metricsURLs, u+"/metrics")
	}
	prom := promtest.Start(t, promtest.Options{Targets: metricsURLs, ScrapeInterval: time.Second})
	pq, err := query.NewPrometheus(prom.URL, config.DefaultHTTPClientConfig)
	if err != nil {
		t.Fatal(err)
	}
	emb, err := query.NewEmbedded(context.Background(), metricsURLs, time.Second, query.EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Close()

	// Write load, so the replication lanes carry traffic to compare.
	stopLoad := make(chan struct{})
	var load sync.WaitGroup
	load.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopLoad:
				return
			case <-time.After(10 * time.Millisecond):
			}
			_, _ = c.Put(leader, fmt.Sprintf("k%d", i%100), []byte("v"))
		}
	})
	defer func() { close(stopLoad); load.Wait() }()

	promtest.Eventually(t, 30*time.Second, "Prometheus to scrape sent counters from every replica", func() bool {
		vec, _, err := pq.Query(context.Background(), `count(elastickv_raft_dispatch_sent_total) > 0 and count(up == 1) == 3`, time.Now())
		return err == nil && len(vec) == 1
	})
	// upCount polls both stores until expr, a count over up, answers 3
	// (every replica) in each.
	upCount := func(t *testing.T, what, expr string) {
		t.Helper()
		for _, q := range []gates.Querier{pq, emb} {
			promtest.Eventually(t, 30*time.Second, what, func() bool {
				vec, _, err := q.Query(context.Background(), expr, time.Now())
				return err == nil && len(vec) == 1 && vec[0].Value == 3
			})
		}
		t.Logf("both stores: %s", what)
	}
	upCount(t, "two scrapes of every replica before the first window", `count(count_over_time(up[5s]) >= 2)`)

	judge := func(t *testing.T, start, end time.Time) (fromProm, fromEmb gates.Result) {
		t.Helper()
		time.Sleep(time.Until(end))
		upCount(t, "every replica scraped past the window's end", fmt.Sprintf(`count(timestamp(up) >= %.3f)`, float64(end.UnixMilli())/1000))
		req := gates.Request{PresenceMetric: targets.LanectlLanesEnabled,
			Canaries:  replicaTargets("n2"),
			Baselines: replicaTargets("n1", "n3"),
			Window:    gates.Window{Start: start, End: end},
			Step:      2 * time.Second,
		}
		var err error
		if fromProm, err = gates.Evaluate(context.Background(), pq, targets.Lanectl().Gates(), req); err != nil {
			t.Fatalf("Evaluate via Prometheus: %v", err)
		}
		if fromEmb, err = gates.Evaluate(context.Background(), emb, targets.Lanectl().Gates(), req); err != nil {
			t.Fatalf("Evaluate via embedded store: %v", err)
		}
		for i := range fromProm.Gates {
			p, e := fromProm.Gates[i], fromEmb.Gates[i]
			if p.Verdict != e.Verdict {
				t.Errorf("gate %s: Prometheus %s (%s), embedded %s (%s)", p.Name, p.Verdict, p.Reason, e.Verdict, e.Reason)
			}
		}
		return fromProm, fromEmb
	}

	t.Run("healthy", func(t *testing.T) {
		start := time.Now()
		p, e := judge(t, start, start.Add(8*time.Second))
		for _, r := range []gates.Result{p, e} {
			if r.Verdict != gates.Pass {
				t.Errorf("verdict: got %s (%s), want pass", r.Verdict, r.Reason)
				logGates(t, r)
			}
		}
	})

	t.Run("heartbeat drops on the canary", func(t *testing.T) {
		start := time.Now()
		// Stall the canary's heartbeat lane: towards a follower if it
		// leads (heartbeats), else towards the leader (responses).
		ids := map[string]uint64{}
		for _, p := range c.Peers() {
			ids[p.Name] = p.ID
		}
		target := c.Name(leader)
		if leader == 1 {
			target = "n3"
		}
		sw.on(ids[target])
		dropped := func() bool {
			m, err := c.Metrics(1)
			if err != nil {
				return false
			}
			for _, line := range strings.Split(m, "\n") {
				if !strings.HasPrefix(line, `elastickv_raft_dispatch_dropped_total{lane="heartbeat"`) {
					continue
				}
				if f := strings.Fields(line); len(f) == 2 && f[1] != "0" {
					return true
				}
			}
			return false
		}
		promtest.Eventually(t, 30*time.Second, "heartbeat-lane drops in both stores", dropped)
		sw.off()
		p, e := judge(t, start, time.Now().Add(3*time.Second))
		for _, r := range []gates.Result{p, e} {
			if r.Verdict != gates.Fail || !strings.HasPrefix(r.Reason, "heartbeat_drops: canary n2: ") {
				t.Errorf("verdict: got %s (%s), want fail on heartbeat_drops", r.Verdict, r.Reason)
				logGates(t, r)
			}
		}
	})
}

func logGates(t *testing.T, r gates.Result) {
	t.Helper()
	for _, g := range r.Gates {
		t.Logf("%s %s: %s", g.Name, g.Verdict, g.Reason)
	}
}
