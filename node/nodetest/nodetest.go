// Package nodetest starts real lanectl replicas for tests: n replica.Replica
// values in the test process, talking raft over loopback TCP through the lane
// dispatcher and transport, each with its own temporary data directory and
// HTTP API. Tests stop, restart (with another environment, as a rollout
// does), write and read through it.
//
// It never fakes a part of the replica and never listens on anything but
// 127.0.0.1. Every replica it starts is stopped, and waited for, by the
// test's cleanup, so callers stay goleak-clean.
package nodetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/node/replica/status"
	"github.com/lanectl/lanectl/node/transport"
)

// Env is the environment a replica is started with; only
// ELASTICKV_RAFT_DISPATCHER_LANES and ELASTICKV_FSM_SYNC_MODE are read.
type Env map[string]string

// FourLane is the environment with the four-lane dispatcher on.
func FourLane() Env { return Env{lanes.FlagEnv: "1"} }

// Legacy is the environment with the flag off (the legacy two-lane layout).
func Legacy() Env { return Env{lanes.FlagEnv: "0"} }

// With returns a copy of e with key set to value.
func (e Env) With(key, value string) Env {
	out := Env{key: value}
	for k, v := range e {
		if k != key {
			out[k] = v
		}
	}
	return out
}

func (e Env) get(key string) string { return e[key] }

// Options tune a test cluster. Zero values give a fast-ticking cluster
// suitable for tests.
type Options struct {
	// Env is each replica's environment, by index; missing entries are
	// empty (legacy layout, sync mode).
	Env []Env
	// TickInterval defaults to 20ms and ElectionTick to 20: heartbeats
	// every 20ms keep tests quick, and a 400ms election timeout rides out
	// the scheduling stalls of a loaded CI machine running -race.
	TickInterval  time.Duration
	HeartbeatTick int
	ElectionTick  int
	// SnapshotEntries and SnapshotCatchUpEntries default to the node
	// package defaults.
	SnapshotEntries        uint64
	SnapshotCatchUpEntries uint64
	HealthMaxLag           uint64
	// ProposalTimeout bounds each PUT; defaults to 2s so a write lost with
	// a stopped leader fails quickly.
	ProposalTimeout time.Duration
	// Groups is the number of raft groups every replica runs; zero is 1.
	Groups int
	// Transport tunes each replica's TCP transport (e.g. Dial to put a
	// simulated link in the way).
	Transport transport.Config
	// Logger receives every replica's logs; nil writes warnings and errors
	// to the test's output.
	Logger *slog.Logger
}

// Cluster is a running test cluster. Replica i is named "n<i+1>". It is a
// replica.LocalCluster that reports failures to the test.
type Cluster struct {
	t      testing.TB
	lc     *replica.LocalCluster
	client *http.Client
	mu     sync.Mutex
	envs   []Env
}

// StartCluster starts n replicas and registers their shutdown with
// t.Cleanup. It does not wait for a leader; see WaitLeader.
func StartCluster(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("nodetest: cluster of %d replicas", n)
	}
	if opts.TickInterval == 0 {
		opts.TickInterval = 20 * time.Millisecond
	}
	if opts.ElectionTick == 0 {
		opts.ElectionTick = 20
	}
	if opts.ProposalTimeout == 0 {
		opts.ProposalTimeout = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	c := &Cluster{
		t:      t,
		client: &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second},
		envs:   make([]Env, n),
	}
	starts := make([]replica.LocalStart, n)
	for i := range n {
		if i < len(opts.Env) {
			c.envs[i] = opts.Env[i]
		}
		starts[i] = replica.LocalStart{Getenv: c.envs[i].get}
	}
	lc, err := replica.StartLocalCluster(t.Context(), replica.LocalClusterConfig{
		Replicas:               n,
		Dir:                    t.TempDir(),
		Start:                  starts,
		Groups:                 opts.Groups,
		TickInterval:           opts.TickInterval,
		HeartbeatTick:          opts.HeartbeatTick,
		ElectionTick:           opts.ElectionTick,
		SnapshotEntries:        opts.SnapshotEntries,
		SnapshotCatchUpEntries: opts.SnapshotCatchUpEntries,
		HealthMaxLag:           opts.HealthMaxLag,
		ProposalTimeout:        opts.ProposalTimeout,
		Transport:              opts.Transport,
		Logger:                 opts.Logger,
	})
	if err != nil {
		c.client.CloseIdleConnections()
		t.Fatalf("nodetest: %v", err)
	}
	c.lc = lc
	t.Cleanup(c.Close)
	return c
}

// N is the number of replicas, running or not.
func (c *Cluster) N() int { return c.lc.N() }

// Name is replica i's name ("n1" for 0), its node_id label.
func (c *Cluster) Name(i int) string { return c.lc.Name(i) }

// URL is replica i's HTTP base URL, stable across restarts.
func (c *Cluster) URL(i int) string { return c.lc.URL(i) }

// RaftAddr is replica i's raft transport address, stable across restarts.
func (c *Cluster) RaftAddr(i int) string { return c.lc.RaftAddr(i) }

// Peers is the cluster's membership as every replica was given it.
func (c *Cluster) Peers() []replica.Peer { return c.lc.Peers() }

// URLs are every replica's HTTP base URLs.
func (c *Cluster) URLs() []string {
	out := make([]string, c.N())
	for i := range out {
		out[i] = c.URL(i)
	}
	return out
}

// DataDir is replica i's data directory.
func (c *Cluster) DataDir(i int) string { return c.lc.DataDir(i) }

// Env is the environment replica i was last started with.
func (c *Cluster) Env(i int) Env {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.envs[i]
}

// Replica returns replica i, or nil while it is stopped.
func (c *Cluster) Replica(i int) *replica.Replica { return c.lc.Replica(i) }

// Running reports whether replica i is running.
func (c *Cluster) Running(i int) bool { return c.Replica(i) != nil }

// Stop shuts replica i down cleanly and waits for it. Stopping a stopped
// replica does nothing.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.lc.Stop(i); err != nil {
		c.t.Errorf("nodetest: stop %s: %v", c.Name(i), err)
	}
}

// Restart stops replica i (if running) and starts it again on the same data
// directory and addresses with env, failing the test if it does not start.
func (c *Cluster) Restart(i int, env Env) {
	c.t.Helper()
	if err := c.TryRestart(i, env); err != nil {
		c.t.Fatalf("nodetest: restart %s: %v", c.Name(i), err)
	}
}

// TryRestart is Restart returning the start error, for tests of bad data
// directories. The replica stays stopped on error.
func (c *Cluster) TryRestart(i int, env Env) error {
	if err := c.lc.Stop(i); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	c.mu.Lock()
	c.envs[i] = env
	c.mu.Unlock()
	return c.lc.Restart(i, replica.LocalStart{Getenv: env.get})
}

// Close stops every replica. It is registered with t.Cleanup.
func (c *Cluster) Close() {
	if err := c.lc.Close(); err != nil {
		c.t.Errorf("nodetest: %v", err)
	}
	c.client.CloseIdleConnections()
}

// Status fetches replica i's /status.
func (c *Cluster) Status(i int) (status.Replica, error) {
	var st status.Replica
	body, code, err := c.do(http.MethodGet, c.URL(i)+"/status", nil)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("GET /status on %s: %d %s", c.Name(i), code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decode /status of %s: %w", c.Name(i), err)
	}
	return st, nil
}

// Health fetches replica i's /healthz: its status code and body.
func (c *Cluster) Health(i int) (int, string, error) {
	body, code, err := c.do(http.MethodGet, c.URL(i)+"/healthz", nil)
	return code, string(body), err
}

// Metrics fetches replica i's /metrics text.
func (c *Cluster) Metrics(i int) (string, error) {
	body, code, err := c.do(http.MethodGet, c.URL(i)+"/metrics", nil)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("GET /metrics on %s: %d", c.Name(i), code)
	}
	return string(body), err
}

// WaitLeader waits until every running replica reports the same leader of
// group 0 and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	return c.WaitGroupLeader(0, timeout)
}

// WaitGroupLeader waits until every running replica reports the same
// leader of raft group group and returns its index.
func (c *Cluster) WaitGroupLeader(group uint64, timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	c.WaitFor(timeout, func() (bool, string) {
		var why string
		leader, why = c.lc.GroupLeader(group)
		return leader >= 0, why
	})
	return leader
}

// LocalGroupLeader is the replica every running replica agrees leads raft
// group group right now, or -1 and why there is none.
func (c *Cluster) LocalGroupLeader(group uint64) (int, string) { return c.lc.GroupLeader(group) }

// WaitLeaders waits for an agreed leader of every one of groups raft
// groups and returns their indexes, by group.
func (c *Cluster) WaitLeaders(groups int, timeout time.Duration) []int {
	c.t.Helper()
	out := make([]int, groups)
	for g := range out {
		out[g] = c.WaitGroupLeader(uint64(g), timeout)
	}
	return out
}

// Put writes key=value through replica i's HTTP API and returns the applied
// log index (of the key's raft group).
func (c *Cluster) Put(i int, key string, value []byte) (uint64, error) {
	res, err := c.PutResult(i, key, value)
	return res.Index, err
}

// PutResult is Put returning the whole answer: the key's raft group too.
func (c *Cluster) PutResult(i int, key string, value []byte) (replica.PutResult, error) {
	var res replica.PutResult
	body, code, err := c.do(http.MethodPut, c.URL(i)+"/kv/"+url.PathEscape(key), value)
	if err != nil {
		return res, err
	}
	if code != http.StatusOK {
		return res, fmt.Errorf("PUT %s on %s: %d %s", key, c.Name(i), code, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("decode PUT reply from %s: %w", c.Name(i), err)
	}
	return res, nil
}

// Get reads key from replica i's state machine over HTTP; ok is false when
// the key does not exist there.
func (c *Cluster) Get(i int, key string) (value []byte, ok bool, err error) {
	body, code, err := c.do(http.MethodGet, c.URL(i)+"/kv/"+url.PathEscape(key), nil)
	switch {
	case err != nil:
		return nil, false, err
	case code == http.StatusNotFound:
		return nil, false, nil
	case code != http.StatusOK:
		return nil, false, fmt.Errorf("GET %s on %s: %d %s", key, c.Name(i), code, bytes.TrimSpace(body))
	}
	return body, true, nil
}

// ForceSnapshot asks replica i (which must be group 0's leader) to send a
// snapshot of group 0 to the replica named peer.
func (c *Cluster) ForceSnapshot(i int, peer string) (replica.ForceSnapshotResult, error) {
	return c.ForceGroupSnapshot(i, 0, peer)
}

// ForceGroupSnapshot asks replica i (which must be the group's leader) to
// send a snapshot of raft group group to the replica named peer.
func (c *Cluster) ForceGroupSnapshot(i int, group uint64, peer string) (replica.ForceSnapshotResult, error) {
	var res replica.ForceSnapshotResult
	body, code, err := c.do(http.MethodPost, fmt.Sprintf("%s/admin/snapshot?group=%d&peer=%s", c.URL(i), group, url.QueryEscape(peer)), nil)
	if err != nil {
		return res, err
	}
	if code != http.StatusOK {
		return res, fmt.Errorf("force snapshot to %s via %s: %d %s", peer, c.Name(i), code, bytes.TrimSpace(body))
	}
	err = json.Unmarshal(body, &res)
	return res, err
}

// WaitApplied waits until replica i has applied index.
func (c *Cluster) WaitApplied(i int, index uint64, timeout time.Duration) {
	c.t.Helper()
	c.WaitFor(timeout, func() (bool, string) {
		st, err := c.Status(i)
		if err != nil {
			return false, err.Error()
		}
		return st.Applied >= index, fmt.Sprintf("%s applied %d, want %d", c.Name(i), st.Applied, index)
	})
}

// WaitGroupApplied waits until replica i has applied index in raft group
// group.
func (c *Cluster) WaitGroupApplied(i int, group uint64, index uint64, timeout time.Duration) {
	c.t.Helper()
	c.WaitFor(timeout, func() (bool, string) {
		st, err := c.Status(i)
		if err != nil {
			return false, err.Error()
		}
		if group >= uint64(len(st.Groups)) {
			return false, fmt.Sprintf("%s runs %d groups, want group %d", c.Name(i), len(st.Groups), group)
		}
		g := st.Groups[group]
		return g.Applied >= index, fmt.Sprintf("%s applied %d in group %d, want %d", c.Name(i), g.Applied, group, index)
	})
}

// WaitFor polls cond until it holds, failing the test with cond's last
// explanation after timeout.
func (c *Cluster) WaitFor(timeout time.Duration, cond func() (ok bool, why string)) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		var ok bool
		ok, why = cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nodetest: condition not met within %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *Cluster) do(method, u string, body []byte) ([]byte, int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: read body: %w", method, u, err)
	}
	return b, resp.StatusCode, nil
}
