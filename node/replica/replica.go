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
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
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
// raft traffic goes through a lane node.Dispatcher and a transport.TCP. It
// runs Config.Groups raft groups (see group); each has its own goroutine,
// RawNode, log, state machine and snapshots, and all of them share the
// replica's one dispatcher, transport and HTTP API.
type Replica struct {
	cfg      Config
	self     Peer
	log      *slog.Logger
	names    map[uint64]string
	started  time.Time
	registry *prometheus.Registry
	metrics  *replicaMetrics

	disp   *node.Dispatcher
	trans  *transport.TCP
	httpLn net.Listener
	groups []*group

	stopped chan struct{} // closed when every group's raft loop has exited
	running atomic.Bool
	release sync.Once
	relErr  error

	waiters waiters
	reqBase uint64
	reqSeq  atomic.Uint64
}

// New opens (or initialises) the data directory, restores every group's
// state machine and raft log, and binds the raft and HTTP listeners. Run starts
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
	if err := r.startMetrics(); err != nil {
		return nil, err
	}
	if err := checkGroupDirs(c.DataDir, c.Groups); err != nil {
		return nil, err
	}
	for id := range uint64(c.Groups) {
		g, err := r.openGroup(id)
		if g != nil {
			r.groups = append(r.groups, g)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := r.startNetwork(); err != nil {
		return nil, err
	}
	for _, g := range r.groups {
		g.publish()
	}
	return r, nil
}

// startMetrics creates the registry, the replica-wide metrics and the
// dispatcher every group shares.
func (r *Replica) startMetrics() error {
	var err error
	r.registry = prometheus.NewRegistry()
	reg := prometheus.WrapRegistererWith(prometheus.Labels{LabelNodeID: r.cfg.Name}, r.registry)
	if r.metrics, err = newReplicaMetrics(reg); err != nil {
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
		Enqueued:        r.cfg.Enqueued,
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

// Run serves until ctx is cancelled or a group's raft loop fails, then shuts
// down: in every group it leads, the replica first hands leadership to a
// follower (bounded by one election timeout), then the groups' raft loops
// stop, then HTTP, the transport, the dispatcher and storage. A failing
// group stops the others. It returns nil after a clean shutdown.
func (r *Replica) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("replica already running")
	}
	srv := r.httpServer(ctx)
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(r.httpLn) }()
	r.log.Info("replica running", "raft", r.RaftAddr().String(), "http", r.HTTPAddr().String(),
		"lanes", r.cfg.Mode.String(), "sync_mode", r.cfg.SyncMode.String(), "groups", len(r.groups))

	loopErr := r.runGroups(ctx)
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

// runGroups runs every group's raft loop on its own goroutine until ctx is
// cancelled or one of them fails, and waits for all of them.
func (r *Replica) runGroups(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(r.groups))
	for _, g := range r.groups {
		go func() {
			err := g.loop(ctx)
			close(g.stopped)
			if err != nil {
				err = fmt.Errorf("group %d: %w", g.id, err)
				cancel()
			}
			errs <- err
		}()
	}
	var all []error
	for range r.groups {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
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
		for _, g := range r.groups {
			errs = append(errs, g.close())
		}
		r.relErr = errors.Join(errs...)
	})
	return r.relErr
}
