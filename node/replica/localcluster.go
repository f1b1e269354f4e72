package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/internal/loopback"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/transport"
)

// LocalClusterConfig describes a cluster run inside one process. Zero tuning
// fields take the Config defaults.
type LocalClusterConfig struct {
	// Replicas is the cluster size; replica i is named "n<i+1>".
	Replicas int
	// Dir holds every replica's data directory, Dir/<name>. The caller
	// owns it and removes it.
	Dir string
	// Start is how each replica is first started, by index; missing
	// entries read an empty environment (legacy layout, sync mode).
	Start []LocalStart
	// Groups is the number of raft groups every replica runs; zero is 1.
	Groups int

	TickInterval           time.Duration
	HeartbeatTick          int
	ElectionTick           int
	SnapshotEntries        uint64
	SnapshotCatchUpEntries uint64
	HealthMaxLag           uint64
	ProposalTimeout        time.Duration
	// Transport tunes each replica's TCP transport.
	Transport transport.Config
	// TransportOf, when set, is replica i's transport config instead of
	// Transport: benchmarks give each replica a dialer that puts a
	// simulated link between it and one peer.
	TransportOf func(i int) transport.Config
	// Enqueued, when set, sees every replica's outbound messages as its
	// dispatcher queues them (see Config.Enqueued).
	Enqueued func(group uint64, lane lanes.Lane, m *raftpb.Message, at time.Time)
	// Logger receives every replica's logs with a replica attribute; nil
	// discards them.
	Logger *slog.Logger
}

// LocalStart is what one start of a replica reads: its environment (only
// ELASTICKV_RAFT_DISPATCHER_LANES and ELASTICKV_FSM_SYNC_MODE matter), the
// way a service manager would hand it an env file, and an optional drop
// injection.
type LocalStart struct {
	// Getenv reads the replica's environment; nil reads nothing.
	Getenv func(key string) string
	// InjectDrops deliberately drops messages of one lane; see
	// Config.InjectDrops.
	InjectDrops node.DropInjection
}

// LocalCluster runs replicas of one raft cluster in this process. They talk
// to each other over loopback TCP through the lane dispatcher and the TCP
// transport exactly as separate processes would, and each serves its HTTP
// API on 127.0.0.1. A replica can be stopped and restarted on the same data
// directory and addresses with another environment, which is what a rollout
// does to it.
//
// Every method is safe for concurrent use. Close stops every replica and
// waits for it.
type LocalCluster struct {
	cfg    LocalClusterConfig
	ctx    context.Context
	peers  []Peer
	slots  []*localSlot
	mu     sync.Mutex
	closed bool
}

type localSlot struct {
	name     string
	dir      string
	httpAddr string
	// Owned by mu.
	rep    *Replica
	cancel context.CancelFunc
	done   chan error
}

// StartLocalCluster binds every replica's raft and HTTP listener on
// 127.0.0.1, on ports below the ephemeral range (see package loopback) so
// that a restart can bind them again, and starts them all. The replicas run until ctx is
// cancelled or Close is called; it does not wait for a leader. On error,
// whatever was started has been stopped again.
func StartLocalCluster(ctx context.Context, cfg LocalClusterConfig) (*LocalCluster, error) {
	if cfg.Replicas < 1 {
		return nil, fmt.Errorf("local cluster of %d replicas: want at least 1", cfg.Replicas)
	}
	if cfg.Dir == "" {
		return nil, errors.New("local cluster: no directory for the replicas' data")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &LocalCluster{cfg: cfg, ctx: ctx}
	raftLns := make([]net.Listener, 0, cfg.Replicas)
	httpLns := make([]net.Listener, 0, cfg.Replicas)
	closeFrom := func(i int) {
		for j := i; j < len(raftLns); j++ {
			_ = raftLns[j].Close()
			_ = httpLns[j].Close()
		}
	}
	for i := range cfg.Replicas {
		rl, err := loopback.Listen()
		if err != nil {
			closeFrom(0)
			return nil, fmt.Errorf("local cluster: listen for raft: %w", err)
		}
		hl, err := loopback.Listen()
		if err != nil {
			_ = rl.Close()
			closeFrom(0)
			return nil, fmt.Errorf("local cluster: listen for HTTP: %w", err)
		}
		raftLns, httpLns = append(raftLns, rl), append(httpLns, hl)
		name := "n" + strconv.Itoa(i+1)
		c.peers = append(c.peers, Peer{Name: name, ID: uint64(i + 1), Addr: rl.Addr().String()})
		c.slots = append(c.slots, &localSlot{
			name:     name,
			dir:      filepath.Join(cfg.Dir, name),
			httpAddr: hl.Addr().String(),
		})
	}
	for i := range cfg.Replicas {
		var s LocalStart
		if i < len(cfg.Start) {
			s = cfg.Start[i]
		}
		if err := c.start(i, s, raftLns[i], httpLns[i]); err != nil {
			closeFrom(i + 1)
			return nil, errors.Join(fmt.Errorf("start %s: %w", c.slots[i].name, err), c.Close())
		}
	}
	return c, nil
}

func (c *LocalCluster) replicaConfig(i int, s LocalStart, raftLn, httpLn net.Listener) Config {
	slot := c.slots[i]
	getenv := s.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	mode, sync, warnings := SettingsFromEnv(getenv)
	log := c.cfg.Logger.With("replica", slot.name)
	tc := c.cfg.Transport
	if c.cfg.TransportOf != nil {
		tc = c.cfg.TransportOf(i)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	return Config{
		Name:                   slot.name,
		Peers:                  c.peers,
		ListenAddr:             c.peers[i].Addr,
		HTTPAddr:               slot.httpAddr,
		RaftListener:           raftLn,
		HTTPListener:           httpLn,
		DataDir:                slot.dir,
		Groups:                 c.cfg.Groups,
		Mode:                   mode,
		SyncMode:               sync,
		TickInterval:           c.cfg.TickInterval,
		HeartbeatTick:          c.cfg.HeartbeatTick,
		ElectionTick:           c.cfg.ElectionTick,
		SnapshotEntries:        c.cfg.SnapshotEntries,
		SnapshotCatchUpEntries: c.cfg.SnapshotCatchUpEntries,
		HealthMaxLag:           c.cfg.HealthMaxLag,
		ProposalTimeout:        c.cfg.ProposalTimeout,
		Transport:              tc,
		Enqueued:               c.cfg.Enqueued,
		InjectDrops:            s.InjectDrops,
		Logger:                 log,
	}
}

// start creates replica i and runs it in a goroutine that Stop waits for.
// Nil listeners make the replica listen on its fixed addresses again.
func (c *LocalCluster) start(i int, s LocalStart, raftLn, httpLn net.Listener) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		for _, ln := range []net.Listener{raftLn, httpLn} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		return errors.New("local cluster is closed")
	}
	rep, err := New(c.replicaConfig(i, s, raftLn, httpLn))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan error, 1)
	c.mu.Lock()
	slot := c.slots[i]
	var refuse error
	switch {
	case c.closed:
		refuse = errors.New("local cluster is closed")
	case slot.rep != nil:
		// Another Restart of the same replica won the race.
		refuse = errors.New("replica is already running")
	}
	if refuse != nil {
		c.mu.Unlock()
		cancel()
		return errors.Join(refuse, rep.Close())
	}
	slot.rep, slot.cancel, slot.done = rep, cancel, done
	c.mu.Unlock()
	go func() { done <- rep.Run(ctx) }()
	return nil
}

// N is the number of replicas, running or not.
func (c *LocalCluster) N() int { return len(c.slots) }

// Name is replica i's name ("n1" for 0): its node_id label and raft
// identity.
func (c *LocalCluster) Name(i int) string { return c.slots[i].name }

// Index finds a replica by name.
func (c *LocalCluster) Index(name string) (int, bool) {
	for i, s := range c.slots {
		if s.name == name {
			return i, true
		}
	}
	return -1, false
}

// URL is replica i's HTTP base URL, stable across restarts.
func (c *LocalCluster) URL(i int) string { return "http://" + c.slots[i].httpAddr }

// RaftAddr is replica i's raft transport address, stable across restarts.
func (c *LocalCluster) RaftAddr(i int) string { return c.peers[i].Addr }

// Peers is the membership every replica was given.
func (c *LocalCluster) Peers() []Peer { return append([]Peer(nil), c.peers...) }

// DataDir is replica i's data directory.
func (c *LocalCluster) DataDir(i int) string { return c.slots[i].dir }

// Replica returns replica i, or nil while it is stopped.
func (c *LocalCluster) Replica(i int) *Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.slots[i].rep
}

// Stop shuts replica i down and waits for it, returning how its Run ended.
// Stopping a stopped replica does nothing.
func (c *LocalCluster) Stop(i int) error {
	c.mu.Lock()
	s := c.slots[i]
	cancel, done := s.cancel, s.done
	s.rep, s.cancel, s.done = nil, nil, nil
	c.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

// Restart stops replica i (if running) and starts it again on the same data
// directory and addresses as s says: a service restart that rereads its env
// file. The replica stays stopped when it does not start.
func (c *LocalCluster) Restart(i int, s LocalStart) error {
	if err := c.Stop(i); err != nil {
		return fmt.Errorf("restart %s: stop: %w", c.slots[i].name, err)
	}
	if err := c.start(i, s, nil, nil); err != nil {
		return fmt.Errorf("restart %s: %w", c.slots[i].name, err)
	}
	return nil
}

// Close stops every replica, waits for each, and refuses later restarts.
// It returns how the replicas' runs ended; calling it again returns nil.
func (c *LocalCluster) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	var errs []error
	for i := range c.slots {
		if err := c.Stop(i); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", c.slots[i].name, err))
		}
	}
	return errors.Join(errs...)
}

// Leader returns the index of group 0's leader; see GroupLeader.
func (c *LocalCluster) Leader() (int, string) { return c.GroupLeader(0) }

// GroupLeader returns the index of the leader of raft group group that
// every running replica agrees on, from their in-process status, or -1 and
// why there is none.
func (c *LocalCluster) GroupLeader(group uint64) (int, string) {
	var leader string
	for i := range c.slots {
		r := c.Replica(i)
		if r == nil {
			continue
		}
		st := r.Status()
		if group >= uint64(len(st.Groups)) {
			return -1, fmt.Sprintf("%s runs no group %d", c.slots[i].name, group)
		}
		g := st.Groups[group]
		if g.Leader == "" {
			return -1, fmt.Sprintf("%s knows no leader of group %d", c.slots[i].name, group)
		}
		if leader != "" && g.Leader != leader {
			return -1, fmt.Sprintf("group %d: %s says %s, another says %s", group, c.slots[i].name, g.Leader, leader)
		}
		leader = g.Leader
	}
	if leader == "" {
		return -1, "no replica is running"
	}
	for i, s := range c.slots {
		if s.name == leader && c.Replica(i) != nil {
			return i, ""
		}
	}
	return -1, fmt.Sprintf("group %d: leader %q is not running", group, leader)
}
