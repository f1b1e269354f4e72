package replica

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica/status"
	"github.com/lanectl/lanectl/node/transport"
)

var (
	// ErrNoLeader is returned by Put when no leader is known, so the
	// proposal could not be forwarded.
	ErrNoLeader = errors.New("no raft leader known")
	// ErrStopped is returned by Put and ForceSnapshot when the replica has
	// stopped or is stopping.
	ErrStopped = errors.New("replica stopped")
)

// Replica is one member of a raft-replicated key-value store whose outbound
// raft traffic goes through a lane node.Dispatcher and a transport.TCP. One
// goroutine (Run's) owns the raft.RawNode; everything else talks to it
// through channels.
type Replica struct {
	cfg      Config
	self     Peer
	log      *slog.Logger
	names    map[uint64]string
	started  time.Time
	registry *prometheus.Registry
	metrics  *replicaMetrics

	store  *raftStore
	kv     *kvStore
	ms     *raft.MemoryStorage
	rn     *raft.RawNode
	disp   *node.Dispatcher
	trans  *transport.TCP
	httpLn net.Listener

	recvc   chan *raftpb.Message
	propc   chan proposal
	forcec  chan forceRequest
	stopped chan struct{} // closed when the raft loop has exited
	running atomic.Bool
	release sync.Once
	relErr  error

	waiters waiters
	reqBase uint64
	reqSeq  atomic.Uint64
	status  atomic.Pointer[status.Replica]

	lastContact atomic.Int64 // unix nanoseconds; 0 = never
	isLeader    atomic.Bool

	// Owned by the raft goroutine.
	confState      *raftpb.ConfState
	snapIndex      uint64
	applied        uint64
	lead           uint64
	ticks          uint64
	readSeq        uint64
	leaderCommit   uint64
	leaderCommitAt time.Time
	force          *forceState
	isolated       uint64
	installed      uint64
	props          []proposal
	// stopping is set once Run's context is cancelled; handOffTo is the
	// follower a stopping leader hands leadership to.
	stopping  bool
	handOffTo uint64
}

// New opens (or initialises) the data directory, restores the state
// machine and the raft log, and binds the raft and HTTP listeners. Run starts
// it; Close releases a replica that is never run.
func New(cfg Config) (_ *Replica, err error) {
	c := cfg.withDefaults()
	self, err := c.validate()
	if err != nil {
		for _, ln := range []net.Listener{c.RaftListener, c.HTTPListener} {
			if ln != nil {
				_ = ln.Close()
			}
		}
		return nil, fmt.Errorf("replica config: %w", err)
	}
	r := &Replica{
		cfg:     c,
		self:    self,
		log:     c.Logger.With("node_id", c.Name),
		names:   make(map[uint64]string),
		started: time.Now(),
		recvc:   make(chan *raftpb.Message, inboundQueue),
		propc:   make(chan proposal),
		forcec:  make(chan forceRequest),
		stopped: make(chan struct{}),
		waiters: waiters{m: make(map[uint64]chan uint64)},
	}
	for _, p := range c.Peers {
		r.names[p.ID] = p.Name
	}
	// Request IDs only need to be unique among the writes in flight; a
	// random base per start keeps a restarted replica from reusing the IDs
	// of its previous life.
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	r.reqBase = self.ID<<48 ^ binary.BigEndian.Uint64(seed[:])>>16

	defer func() {
		if err != nil {
			_ = r.releaseAll()
		}
	}()
	if err := r.openData(); err != nil {
		return nil, err
	}
	if err := r.startRaft(); err != nil {
		return nil, err
	}
	if err := r.startNetwork(); err != nil {
		return nil, err
	}
	r.publish()
	return r, nil
}

func (r *Replica) startRaft() error {
	rc := &raft.Config{
		ID:                        r.self.ID,
		ElectionTick:              r.cfg.ElectionTick,
		HeartbeatTick:             r.cfg.HeartbeatTick,
		Storage:                   r.ms,
		Applied:                   r.applied,
		MaxSizePerMsg:             r.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           r.cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 1 << 30,
		// CheckQuorum and PreVote keep a replica that restarts (which is
		// what a rollout does to each one) from disrupting a healthy leader.
		CheckQuorum: true,
		PreVote:     true,
		Logger:      raftLogger{r.log.With("component", "raft")},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	r.rn = rn

	r.registry = prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(prometheus.Labels{LabelNodeID: r.cfg.Name}, r.registry)
	if r.metrics, err = newReplicaMetrics(reg, r.lastContactSeconds); err != nil {
		return err
	}
	if err := node.NewSyncModeGauge(reg, r.cfg.SyncMode); err != nil {
		return err
	}
	r.disp, err = node.NewDispatcher(node.DispatcherConfig{
		Mode:            r.cfg.Mode,
		MaxInflightMsgs: r.cfg.MaxInflightMsgs,
		Transport:       transportFunc(r.sendVia),
		Registerer:      reg,
		Logger:          r.log.With("component", "dispatcher"),
		PeerLabel:       r.peerName,
		InjectDrops:     r.cfg.InjectDrops,
	})
	if err != nil {
		return err
	}
	return nil
}

// transportFunc adapts the late-bound transport: the dispatcher is built
// before the listener is opened.
type transportFunc func(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error

func (f transportFunc) Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	return f(ctx, lane, group, m)
}

func (r *Replica) sendVia(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	return r.trans.Send(ctx, lane, group, m)
}

func (r *Replica) startNetwork() error {
	tc := r.cfg.Transport
	tc.ID = r.self.ID
	tc.Listen = r.cfg.ListenAddr
	tc.Listener = r.cfg.RaftListener
	tc.Handler = r.deliver
	tc.Logger = r.log.With("component", "transport")
	tc.Peers = make(map[uint64]string)
	tc.Names = make(map[uint64]string)
	for _, p := range r.cfg.Peers {
		tc.Names[p.ID] = p.Name
		if p.ID != r.self.ID {
			tc.Peers[p.ID] = p.Addr
		}
	}
	tc.TLS = r.cfg.PeerTLS
	tc.Insecure = r.cfg.Insecure
	// The transport owns the raft listener from here on, even on error.
	r.cfg.RaftListener = nil
	t, err := transport.New(tc)
	if err != nil {
		if tc.Listener != nil {
			_ = tc.Listener.Close()
		}
		return err
	}
	r.trans = t
	for id := range tc.Peers {
		r.disp.AddPeer(id)
	}
	r.httpLn, r.cfg.HTTPListener = r.cfg.HTTPListener, nil
	if r.httpLn == nil {
		if r.httpLn, err = net.Listen("tcp", r.cfg.HTTPAddr); err != nil {
			return fmt.Errorf("listen for HTTP on %s: %w", r.cfg.HTTPAddr, err)
		}
	}
	return r.secureHTTP()
}

// RaftAddr is the address the raft transport accepts peers on.
func (r *Replica) RaftAddr() net.Addr { return r.trans.Addr() }

// HTTPAddr is the address of the HTTP API.
func (r *Replica) HTTPAddr() net.Addr { return r.httpLn.Addr() }

// Registry is the replica's own metrics registry (node_id on every series).
func (r *Replica) Registry() *prometheus.Registry { return r.registry }

func (r *Replica) peerName(id uint64) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return fmt.Sprintf("%d", id)
}

// Run serves until ctx is cancelled or the replica fails, then shuts down:
// a leader first hands leadership to a follower (bounded by one election
// timeout), then the raft loop stops, then HTTP, the transport, the
// dispatcher and storage.
// It returns nil after a clean shutdown.
func (r *Replica) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("replica already running")
	}
	srv := r.httpServer(ctx)
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(r.httpLn) }()
	r.log.Info("replica running", "raft", r.RaftAddr().String(), "http", r.HTTPAddr().String(),
		"lanes", r.cfg.Mode.String(), "sync_mode", r.cfg.SyncMode.String())

	loopErr := r.loop(ctx)
	close(r.stopped)

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if serveErr := <-httpErr; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve HTTP: %w", serveErr))
	}
	err = errors.Join(loopErr, err, r.releaseAll())
	r.log.Info("replica stopped", "err", err)
	return err
}

// Close releases a replica that was never run (or whose Run has returned).
func (r *Replica) Close() error {
	if r.running.Load() {
		select {
		case <-r.stopped:
		default:
			return errors.New("close: replica is running; cancel Run's context instead")
		}
	}
	return r.releaseAll()
}

func (r *Replica) releaseAll() error {
	r.release.Do(func() {
		var errs []error
		if r.trans != nil {
			errs = append(errs, r.trans.Close())
		}
		if r.disp != nil {
			r.disp.Close()
		}
		if r.cfg.RaftListener != nil {
			errs = append(errs, r.cfg.RaftListener.Close())
		}
		for _, ln := range []net.Listener{r.httpLn, r.cfg.HTTPListener} {
			if ln != nil && !r.running.Load() {
				if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
					errs = append(errs, err)
				}
			}
		}
		if r.kv != nil {
			errs = append(errs, r.kv.close())
		}
		if r.store != nil {
			errs = append(errs, r.store.close())
		}
		r.relErr = errors.Join(errs...)
	})
	return r.relErr
}
