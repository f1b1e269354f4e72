package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
)

var (
	// ErrNoLeader is returned by Put when no leader is known, so the
	// proposal could not be forwarded.
	ErrNoLeader = errors.New("no raft leader known")
	// ErrStopped is returned by Put and ForceSnapshot when the replica has
	// stopped or is stopping.
	ErrStopped = errors.New("replica stopped")
)

// Internal limits of the raft loop.
const (
	// healthProbeTicks: a follower asks the leader for its commit index
	// (raft ReadIndex, heartbeat lane) this often, for /healthz.
	healthProbeTicks = 5
	// maxReadyPerWake bounds the Ready batches handled before the loop
	// looks at its channels again.
	maxReadyPerWake = 64
	// maxDrain bounds the inputs batched into one Ready.
	maxDrain = 256
	// maxBatchBytes bounds the client commands packed into one entry.
	maxBatchBytes = 1 << 20
	// inboundQueue is the buffer between the transport and the raft loop.
	inboundQueue = 4096
)

// Replica is one member of a raft-replicated key-value store whose outbound
// raft traffic goes through a lane Dispatcher and a TCPTransport. One
// goroutine (Run's) owns the raft.RawNode; everything else talks to it
// through channels.
type Replica struct {
	cfg      ReplicaConfig
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
	disp   *Dispatcher
	trans  *TCPTransport
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
	status  atomic.Pointer[Status]

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

type proposal struct {
	data []byte
	errc chan error
}

// NewReplica opens (or initialises) the data directory, restores the state
// machine and the raft log, and binds the raft and HTTP listeners. Run starts
// it; Close releases a replica that is never run.
func NewReplica(cfg ReplicaConfig) (_ *Replica, err error) {
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

// openData opens raft.db and fsm.db, or creates both in an empty directory.
// Exactly one of them present means lost state, which is refused.
func (r *Replica) openData() error {
	dir := r.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	raftPath, fsmPath := filepath.Join(dir, RaftDBFile), filepath.Join(dir, FSMDBFile)
	raftOK, err := fileExists(raftPath)
	if err != nil {
		return err
	}
	fsmOK, err := fileExists(fsmPath)
	if err != nil {
		return err
	}
	switch {
	case raftOK && !fsmOK:
		return fmt.Errorf("%s is missing but %s exists: refusing to start with part of the replica's state (restore the file, or move both away to rejoin as an empty replica)", fsmPath, raftPath)
	case !raftOK && fsmOK:
		return fmt.Errorf("%s is missing but %s exists: refusing to start with part of the replica's state (restore the file, or move both away to rejoin as an empty replica)", raftPath, fsmPath)
	case !raftOK:
		r.log.Info("initialising empty data directory", "dir", dir)
		cs := &raftpb.ConfState{}
		for _, p := range r.cfg.Peers {
			cs.Voters = append(cs.Voters, p.ID)
		}
		slices.Sort(cs.Voters)
		if r.store, err = createRaftStore(raftPath, cs); err != nil {
			return err
		}
		if r.kv, err = openKVStore(fsmPath, r.cfg.SyncMode, true); err != nil {
			return err
		}
		r.ms = raft.NewMemoryStorage()
		r.confState = cs
		// An index-0 snapshot carrying only the membership is how raft
		// expects a static cluster to be bootstrapped: every member starts
		// from the same empty log.
		return r.ms.ApplySnapshot(&raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: cs}})
	}

	var st *persistedRaft
	if r.store, st, err = openRaftStore(raftPath); err != nil {
		return err
	}
	if r.kv, err = openKVStore(fsmPath, r.cfg.SyncMode, false); err != nil {
		return err
	}
	if err := r.checkMembership(st.confState, raftPath); err != nil {
		return err
	}
	r.ms = raft.NewMemoryStorage()
	r.confState = st.confState
	snap := st.snapshot
	if snap == nil {
		snap = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{ConfState: st.confState}}
	}
	r.snapIndex = snap.GetMetadata().GetIndex()
	if err := r.ms.ApplySnapshot(snap); err != nil {
		return fmt.Errorf("load snapshot from %s: %w", raftPath, err)
	}
	if err := r.ms.Append(st.entries); err != nil {
		return fmt.Errorf("load log from %s: %w", raftPath, err)
	}
	if err := r.ms.SetHardState(st.hardState); err != nil {
		return fmt.Errorf("load hard state from %s: %w", raftPath, err)
	}
	applied := r.kv.appliedIndex()
	if applied > st.hardState.GetCommit() {
		return fmt.Errorf("%s: %w: applied index %d is ahead of the commit index %d in %s", fsmPath, ErrCorrupt, applied, st.hardState.GetCommit(), raftPath)
	}
	if applied < r.snapIndex {
		// In nosync mode a crash can lose applies that the log has since
		// compacted away; the snapshot holds them.
		r.log.Info("state machine is behind the raft snapshot; restoring it", "applied", applied, "snapshot_index", r.snapIndex)
		if _, err := r.kv.restore(snap.GetData(), r.snapIndex); err != nil {
			return fmt.Errorf("%s: %w", raftPath, err)
		}
	}
	r.applied = r.kv.appliedIndex()
	keys, size := r.kv.size()
	r.log.Info("loaded data directory", "dir", dir, "applied", r.applied, "commit", st.hardState.GetCommit(),
		"snapshot_index", r.snapIndex, "log_entries", len(st.entries), "keys", keys, "bytes", size)
	return nil
}

// checkMembership refuses a --peers list that names other raft IDs than the
// stored membership: raft would otherwise run with two views of the cluster.
func (r *Replica) checkMembership(cs *raftpb.ConfState, path string) error {
	stored := slices.Sorted(slices.Values(cs.GetVoters()))
	var given []uint64
	for _, p := range r.cfg.Peers {
		given = append(given, p.ID)
	}
	slices.Sort(given)
	if !slices.Equal(stored, given) {
		return fmt.Errorf("peers name raft IDs %v but %s records the membership %v", given, path, stored)
	}
	return nil
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
	if err := NewSyncModeGauge(reg, r.cfg.SyncMode); err != nil {
		return err
	}
	r.disp, err = NewDispatcher(DispatcherConfig{
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
type transportFunc func(ctx context.Context, lane lanes.Lane, m *raftpb.Message) error

func (f transportFunc) Send(ctx context.Context, lane lanes.Lane, m *raftpb.Message) error {
	return f(ctx, lane, m)
}

func (r *Replica) sendVia(ctx context.Context, lane lanes.Lane, m *raftpb.Message) error {
	return r.trans.Send(ctx, lane, m)
}

func (r *Replica) startNetwork() error {
	tc := r.cfg.Transport
	tc.ID = r.self.ID
	tc.Listen = r.cfg.ListenAddr
	tc.Listener = r.cfg.RaftListener
	tc.Handler = r.deliver
	tc.Logger = r.log.With("component", "transport")
	tc.Peers = make(map[uint64]string)
	for _, p := range r.cfg.Peers {
		if p.ID != r.self.ID {
			tc.Peers[p.ID] = p.Addr
		}
	}
	// The transport owns the raft listener from here on, even on error.
	r.cfg.RaftListener = nil
	t, err := NewTCPTransport(tc)
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
	return nil
}

// RaftAddr is the address the raft transport accepts peers on.
func (r *Replica) RaftAddr() net.Addr { return r.trans.Addr() }

// HTTPAddr is the address of the HTTP API.
func (r *Replica) HTTPAddr() net.Addr { return r.httpLn.Addr() }

// Registry is the replica's own metrics registry (node_id on every series).
func (r *Replica) Registry() *prometheus.Registry { return r.registry }

// Status returns the replica's state as of the last raft loop iteration.
func (r *Replica) Status() Status { return *r.status.Load() }

func (r *Replica) peerName(id uint64) string {
	if n, ok := r.names[id]; ok {
		return n
	}
	return fmt.Sprintf("%d", id)
}

// deliver is the transport's Handler: it queues an inbound message for the
// raft loop, waiting while the queue is full so a busy replica slows its
// senders instead of dropping. A MsgSnap is acknowledged to its sender when
// this returns nil.
func (r *Replica) deliver(ctx context.Context, m *raftpb.Message) error {
	if m.GetType() == raftpb.MsgSnap {
		// A damaged snapshot is refused here, so the sender hears of it and
		// raft retries, instead of the raft loop failing on it.
		if err := checkSnapshot(m.GetSnapshot().GetData()); err != nil {
			r.log.Warn("refusing snapshot", "from", r.peerName(m.GetFrom()), "err", err)
			return fmt.Errorf("snapshot from %s: %w", r.peerName(m.GetFrom()), err)
		}
	}
	select {
	case r.recvc <- m:
		return nil
	case <-r.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
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
	srv := &http.Server{
		Handler:           r.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		// Not cancelled with ctx: a request in flight at shutdown is
		// answered from the replica's own stop (503 replica stopped),
		// not cut off as if the client had gone.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
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

// loop is the raft goroutine. When ctx is cancelled a leader first hands
// its leadership to a follower (see handOff), so the cluster elects a new
// leader at once instead of waiting out an election timeout.
func (r *Replica) loop(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.TickInterval)
	defer ticker.Stop()
	defer r.failForce(ErrStopped)
	done := ctx.Done()
	var handOffUntil time.Time
	for {
		select {
		case <-done:
			done = nil
			handOffUntil = r.handOff()
		case <-ticker.C:
			r.rn.Tick()
			r.onTick()
		case m := <-r.recvc:
			r.step(m)
		case p := <-r.propc:
			r.props = append(r.props, p)
		case req := <-r.forcec:
			r.startForce(req)
		case <-r.disp.Pending():
			r.disp.ApplyReports(r.rn)
		}
		r.drainInputs()
		r.proposeQueued()
		if err := r.handleReady(); err != nil {
			r.log.Error("raft loop failed; stopping", "err", err)
			return err
		}
		if !handOffUntil.IsZero() && r.handedOff(handOffUntil) {
			return nil
		}
	}
}

// handOff starts the leadership transfer a stopping leader makes, and
// returns until when to wait for it. The most caught-up follower is asked
// to campaign at once (raft's MsgTimeoutNow). Meanwhile raft drops new
// proposals, and proposeQueued answers them ErrStopped.
func (r *Replica) handOff() time.Time {
	r.stopping = true
	now := time.Now()
	if r.rn.BasicStatus().RaftState != raft.StateLeader {
		return now
	}
	var to, match uint64
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if id != r.self.ID && typ == raft.ProgressTypePeer && pr.RecentActive && (to == 0 || pr.Match > match) {
			to, match = id, pr.Match
		}
	})
	if to == 0 {
		r.log.Info("stopping as leader with no active follower to hand leadership to")
		return now
	}
	r.log.Info("stopping: handing leadership over", "to", r.peerName(to), "match", match)
	r.rn.TransferLeader(to)
	r.handOffTo = to
	return now.Add(time.Duration(r.cfg.ElectionTick) * r.cfg.TickInterval)
}

// handedOff reports whether a stopping replica may exit: it is no leader,
// or its hand-off ended (the new leader is known) or ran out of time.
func (r *Replica) handedOff(until time.Time) bool {
	if r.handOffTo == 0 {
		return true
	}
	bs := r.rn.BasicStatus()
	if bs.Lead != raft.None && bs.Lead != r.self.ID {
		r.log.Info("leadership handed over", "leader", r.peerName(bs.Lead))
		return true
	}
	if time.Now().After(until) {
		r.log.Warn("leadership hand-off timed out; stopping anyway", "to", r.peerName(r.handOffTo))
		return true
	}
	return false
}

// drainInputs steps whatever else is already queued, so that one Ready (and
// one fsync) covers a burst of messages and proposals instead of one each.
func (r *Replica) drainInputs() {
	for range maxDrain {
		select {
		case m := <-r.recvc:
			r.step(m)
		case p := <-r.propc:
			r.props = append(r.props, p)
		default:
			return
		}
	}
}

// proposeQueued proposes the queued client commands, packed into as few
// raft entries as maxBatchBytes allows. On a follower each entry is one
// MsgProp to the leader, so packing keeps a burst of writes from
// overflowing the lane forwarded proposals travel in.
func (r *Replica) proposeQueued() {
	if r.stopping {
		for _, p := range r.props {
			p.errc <- ErrStopped
		}
		clear(r.props)
		r.props = r.props[:0]
	}
	for len(r.props) > 0 {
		n, size := 0, 0
		for n < len(r.props) && (n == 0 || size+len(r.props[n].data) <= maxBatchBytes) {
			size += len(r.props[n].data)
			n++
		}
		batch := r.props[:n]
		var err error
		if n == 1 {
			err = r.rn.Propose(batch[0].data)
		} else {
			cmds := make([][]byte, n)
			for i, p := range batch {
				cmds[i] = p.data
			}
			err = r.rn.Propose(encodeBatch(cmds))
		}
		for _, p := range batch {
			p.errc <- err
		}
		clear(batch)
		r.props = r.props[n:]
	}
	r.props = r.props[:0:0]
}

// fromLeader reports whether only a leader sends messages of type t, so
// receiving one is contact with the leader.
func fromLeader(t raftpb.MessageType) bool {
	switch t {
	case raftpb.MsgApp, raftpb.MsgHeartbeat, raftpb.MsgSnap, raftpb.MsgReadIndexResp, raftpb.MsgTimeoutNow:
		return true
	}
	return false
}

func (r *Replica) step(m *raftpb.Message) {
	if err := r.rn.Step(m); err != nil {
		r.log.Debug("raft refused inbound message", "type", m.GetType().String(), "from", r.peerName(m.GetFrom()), "err", err)
		return
	}
	if fromLeader(m.GetType()) {
		r.lastContact.Store(time.Now().UnixNano())
	}
}

func (r *Replica) onTick() {
	r.ticks++
	if r.force != nil && time.Now().After(r.force.deadline) {
		r.failForce(fmt.Errorf("%w: peer %s was not sent a snapshot within %v", errForceTimeout, r.peerName(r.force.peer), forceTimeout))
	}
	if r.lead != 0 && r.lead != r.self.ID && r.ticks%healthProbeTicks == 0 {
		r.readSeq++
		r.rn.ReadIndex(binary.BigEndian.AppendUint64(nil, r.readSeq))
	}
}

// handleReady processes Ready batches in the order raft requires: persist
// the snapshot, entries and HardState (fsynced), then send messages, then
// apply committed entries, then Advance.
func (r *Replica) handleReady() error {
	for i := 0; i < maxReadyPerWake && r.rn.HasReady(); i++ {
		rd := r.rn.Ready()
		if rd.SoftState != nil {
			r.onSoftState(rd.SoftState)
		}
		if err := r.store.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			return err
		}
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := r.ms.ApplySnapshot(rd.Snapshot); err != nil {
				return fmt.Errorf("install snapshot %d: %w", rd.Snapshot.GetMetadata().GetIndex(), err)
			}
		}
		if err := r.ms.Append(rd.Entries); err != nil {
			return fmt.Errorf("append to in-memory log: %w", err)
		}
		if !raft.IsEmptyHardState(rd.HardState) {
			if err := r.ms.SetHardState(rd.HardState); err != nil {
				return fmt.Errorf("set hard state: %w", err)
			}
		}
		r.send(rd.Messages)
		if !raft.IsEmptySnap(rd.Snapshot) {
			if err := r.installSnapshot(rd.Snapshot); err != nil {
				return err
			}
		}
		if err := r.applyEntries(rd.CommittedEntries); err != nil {
			return err
		}
		for _, rs := range rd.ReadStates {
			r.leaderCommit, r.leaderCommitAt = rs.Index, time.Now()
		}
		r.rn.Advance(rd)
		r.disp.ApplyReports(r.rn)
		if err := r.afterApply(); err != nil {
			return err
		}
	}
	r.publish()
	return nil
}

func (r *Replica) onSoftState(ss *raft.SoftState) {
	if ss.Lead != raft.None && ss.Lead != r.lead {
		r.metrics.leaderChanges.Inc()
		r.log.Info("leader changed", "leader", r.peerName(ss.Lead))
	}
	if ss.Lead != r.lead {
		r.leaderCommit, r.leaderCommitAt = 0, time.Time{}
	}
	r.lead = ss.Lead
	leader := ss.RaftState == raft.StateLeader
	r.isLeader.Store(leader)
	if leader {
		r.metrics.isLeader.Set(1)
	} else {
		r.metrics.isLeader.Set(0)
		if r.force != nil {
			r.failForce(fmt.Errorf("%w: lost leadership", ErrNotLeader))
		}
	}
}

// send hands messages to the dispatcher. While a forced snapshot is being
// prepared, appends to its target are withheld so the target falls behind
// the compaction point (see startForce).
func (r *Replica) send(msgs []*raftpb.Message) {
	if r.isolated != 0 || r.force != nil {
		kept := msgs[:0:0]
		for _, m := range msgs {
			if m.GetTo() == r.isolated && m.GetType() == raftpb.MsgApp {
				continue
			}
			if m.GetType() == raftpb.MsgSnap {
				r.onSnapshotSent(m)
			}
			kept = append(kept, m)
		}
		msgs = kept
	}
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			r.log.Info("sending snapshot", "peer", r.peerName(m.GetTo()),
				"index", m.GetSnapshot().GetMetadata().GetIndex(), "bytes", len(m.GetSnapshot().GetData()))
		}
	}
	r.disp.Dispatch(msgs)
}

func (r *Replica) installSnapshot(snap *raftpb.Snapshot) error {
	start := time.Now()
	idx := snap.GetMetadata().GetIndex()
	recent, err := r.kv.restore(snap.GetData(), idx)
	if err != nil {
		return err
	}
	// Clients waiting here for writes the snapshot covers get their answer
	// now; their entries will never be applied one by one on this replica.
	for _, c := range recent {
		r.waiters.trigger(c.requestID, c.index)
	}
	r.snapIndex, r.applied = idx, idx
	r.installed++
	r.confState = snap.GetMetadata().GetConfState()
	keys, size := r.kv.size()
	r.log.Info("installed snapshot from leader", "index", idx, "bytes", len(snap.GetData()), "keys", keys, "kv_bytes", size,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *Replica) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	var puts []command
	var done []appliedCmd
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				continue // the empty entry a new leader appends
			}
			cmds, err := decodeEntry(e.GetData())
			if err != nil {
				// Every replica skips the same entry, so state stays equal.
				r.log.Error("skipping undecodable log entry", "index", e.GetIndex(), "err", err)
				continue
			}
			for _, c := range cmds {
				if c.kind == cmdPut {
					puts = append(puts, c)
				}
				done = append(done, appliedCmd{c.requestID, e.GetIndex()})
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			if err := r.applyConfChange(e); err != nil {
				return err
			}
		}
	}
	last := ents[len(ents)-1].GetIndex()
	if err := r.kv.apply(puts, done, last); err != nil {
		return err
	}
	r.applied = last
	for _, d := range done {
		r.waiters.trigger(d.requestID, d.index)
		r.onForceApplied(d.requestID)
	}
	return nil
}

func (r *Replica) applyConfChange(e *raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	if e.GetType() == raftpb.EntryConfChange {
		v1 := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), v1); err != nil {
			return fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc = v1
	} else {
		v2 := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), v2); err != nil {
			return fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc = v2
	}
	r.confState = r.rn.ApplyConfChange(cc)
	return r.store.saveConfState(r.confState)
}

// afterApply finishes a forced snapshot's compaction, and snapshots and
// compacts when enough entries were applied since the last snapshot.
func (r *Replica) afterApply() error {
	if r.force != nil && r.force.phase == forceCompact {
		if err := r.snapshotAndCompact(r.applied, r.applied); err != nil {
			return err
		}
		r.forceCompacted()
		return nil
	}
	if r.applied-r.snapIndex < r.cfg.SnapshotEntries {
		return nil
	}
	var compactTo uint64
	if r.applied > r.cfg.SnapshotCatchUpEntries {
		compactTo = r.applied - r.cfg.SnapshotCatchUpEntries
	}
	return r.snapshotAndCompact(r.applied, compactTo)
}

// snapshotAndCompact snapshots the state machine at index at (the applied
// index) and drops the log up to compactTo, on disk and in memory.
func (r *Replica) snapshotAndCompact(at, compactTo uint64) error {
	start := time.Now()
	data := r.kv.snapshotData()
	snap, err := r.ms.CreateSnapshot(at, r.confState, data)
	if err != nil {
		return fmt.Errorf("create snapshot at %d: %w", at, err)
	}
	first, _ := r.ms.FirstIndex()
	if compactTo < first {
		compactTo = first - 1
	}
	if err := r.store.saveSnapshot(snap, compactTo); err != nil {
		return err
	}
	if compactTo >= first {
		if err := r.ms.Compact(compactTo); err != nil {
			return fmt.Errorf("compact log to %d: %w", compactTo, err)
		}
	}
	r.snapIndex = at
	r.log.Info("snapshot taken", "index", at, "compacted_to", compactTo, "bytes", len(data), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// publish refreshes the Status snapshot and the gauges.
func (r *Replica) publish() {
	bs := r.rn.BasicStatus()
	last, err := r.ms.LastIndex()
	if err != nil {
		r.log.Warn("read last log index", "err", err)
	}
	st := &Status{
		ID:            r.cfg.Name,
		RaftID:        r.self.ID,
		Term:          bs.GetTerm(),
		LeaderRaftID:  bs.Lead,
		Role:          roleName(bs.RaftState),
		LastIndex:     last,
		Commit:        bs.GetCommit(),
		Applied:       r.applied,
		SnapshotIndex: r.snapIndex,
		LanesEnabled:  r.cfg.Mode == lanes.ModeFourLane,
		SyncMode:      r.cfg.SyncMode.String(),

		SnapshotsInstalled: r.installed,
	}
	if bs.Lead != raft.None {
		st.Leader = r.peerName(bs.Lead)
	}
	switch {
	case bs.RaftState == raft.StateLeader:
		st.LeaderCommit, st.leaderCommitAt = st.Commit, time.Now()
	case !r.leaderCommitAt.IsZero():
		st.LeaderCommit, st.leaderCommitAt = r.leaderCommit, r.leaderCommitAt
	}
	r.status.Store(st)
	r.metrics.term.Set(float64(st.Term))
	r.metrics.commit.Set(float64(st.Commit))
	r.metrics.applied.Set(float64(st.Applied))
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

func (r *Replica) lastContactSeconds() float64 {
	if r.isLeader.Load() {
		return 0
	}
	last := r.lastContact.Load()
	if last == 0 {
		return time.Since(r.started).Seconds()
	}
	return time.Since(time.Unix(0, last)).Seconds()
}

func (r *Replica) nextRequestID() uint64 {
	return r.reqBase + r.reqSeq.Add(1)
}

// Put replicates key=value and returns the log index it was applied at, once
// this replica has applied it. A follower's proposal is forwarded to the
// leader by raft. ctx bounds the wait.
func (r *Replica) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if key == "" {
		return 0, errors.New("put: empty key")
	}
	id := r.nextRequestID()
	wait := r.waiters.register(id)
	defer r.waiters.cancel(id)
	if err := r.propose(ctx, encodeCommand(command{kind: cmdPut, requestID: id, key: key, value: value})); err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	select {
	case idx := <-wait:
		return idx, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("put %q: not applied: %w", key, context.Cause(ctx))
	case <-r.stopped:
		return 0, fmt.Errorf("put %q: %w", key, ErrStopped)
	}
}

func (r *Replica) propose(ctx context.Context, data []byte) error {
	p := proposal{data: data, errc: make(chan error, 1)}
	select {
	case r.propc <- p:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-r.stopped:
		return ErrStopped
	}
	err := <-p.errc
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrNoLeader
	}
	return err
}

// Get returns the value of key in this replica's state machine. On a
// follower it may trail the leader by the replication lag.
func (r *Replica) Get(key string) ([]byte, bool) {
	return r.kv.get(key)
}

// waiters wakes the clients waiting for their proposals to be applied.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]chan uint64
}

func (w *waiters) register(id uint64) <-chan uint64 {
	ch := make(chan uint64, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waiters) trigger(id, index uint64) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- index
	}
}

// raftLogger sends raft's log lines to slog. Fatal and Panic panic: raft
// calls them on broken invariants and expects them not to return.
type raftLogger struct{ l *slog.Logger }

func (l raftLogger) Debug(v ...any)                 { l.l.Debug(fmt.Sprint(v...)) }
func (l raftLogger) Debugf(format string, v ...any) { l.l.Debug(fmt.Sprintf(format, v...)) }
func (l raftLogger) Info(v ...any)                  { l.l.Info(fmt.Sprint(v...)) }
func (l raftLogger) Infof(format string, v ...any)  { l.l.Info(fmt.Sprintf(format, v...)) }
func (l raftLogger) Warning(v ...any)               { l.l.Warn(fmt.Sprint(v...)) }
func (l raftLogger) Warningf(format string, v ...any) {
	l.l.Warn(fmt.Sprintf(format, v...))
}
func (l raftLogger) Error(v ...any)                 { l.l.Error(fmt.Sprint(v...)) }
func (l raftLogger) Errorf(format string, v ...any) { l.l.Error(fmt.Sprintf(format, v...)) }
func (l raftLogger) Fatal(v ...any)                 { l.Panic(v...) }
func (l raftLogger) Fatalf(format string, v ...any) { l.Panicf(format, v...) }
func (l raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	l.l.Error(msg)
	panic(msg)
}
func (l raftLogger) Panicf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.l.Error(msg)
	panic(msg)
}
