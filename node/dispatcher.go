package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
)

// Transport sends one message of one raft group to one peer over the given
// lane's connection. A lane's worker calls Send sequentially; different lanes
// and peers call it concurrently. m.GetTo() is the peer; group is the raft
// group the message belongs to, which the receiver needs to route it. Send must return promptly once ctx is
// cancelled, which happens when the peer is removed or the dispatcher closes.
type Transport interface {
	Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error
}

// Reporter receives the dispatcher's verdicts on messages. *raft.RawNode
// satisfies it.
type Reporter interface {
	ReportUnreachable(id uint64)
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
}

// DefaultDropLogEvery is how many drops in one (peer, lane) pass between two
// log lines after the first.
const DefaultDropLogEvery = 1000

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	Mode lanes.Mode
	// MaxInflightMsgs is raft's Config.MaxInflightMsgs; it sizes the
	// replication (or legacy normal) lane. Zero means
	// lanes.DefaultMaxInflightMsgs.
	MaxInflightMsgs int
	Transport       Transport
	// Registerer receives the dispatcher metrics. Required.
	Registerer prometheus.Registerer
	// Logger receives drop logs, rate-limited per (peer, lane). Nil discards.
	Logger *slog.Logger
	// DropLogEvery: after the first drop in a (peer, lane), log every Nth.
	// Zero means DefaultDropLogEvery.
	DropLogEvery uint64
	// PeerLabel names a peer in the `peer` metric label and in logs. Nil
	// uses the decimal raft ID.
	PeerLabel func(id uint64) string
	// InjectDrops, when Every > 0, drops every Every-th message routed to
	// Lane as if the lane were full: counted, logged and reported to raft
	// like any other drop. It exists so a canary's gates can be shown to
	// fail on real drop metrics (lanectl demo --inject-heartbeat-drops, the
	// rollout tests); it is never on unless asked for.
	InjectDrops DropInjection
	// Enqueued, when set, sees every message accepted into a lane, with
	// its group and the time, on the goroutine that dispatched it (in the
	// rare race where another group fills the lane first, a message it saw
	// is dropped after all).
	// Benchmarks time messages from enqueue to arrival with it. It must
	// not block or modify the message.
	Enqueued func(group uint64, lane lanes.Lane, m *raftpb.Message, at time.Time)
}

// DropInjection selects deliberate drops in one lane; see
// DispatcherConfig.InjectDrops.
type DropInjection struct {
	Lane  lanes.Lane
	Every uint64
}

// ParseDropInjection parses "LANE:EVERY", e.g. "heartbeat:20". The empty
// string is no injection.
func ParseDropInjection(s string) (DropInjection, error) {
	if s == "" {
		return DropInjection{}, nil
	}
	name, every, ok := strings.Cut(s, ":")
	if !ok {
		return DropInjection{}, fmt.Errorf("drop injection %q: want LANE:EVERY, e.g. heartbeat:20", s)
	}
	lane, err := lanes.ParseLane(name)
	if err != nil {
		return DropInjection{}, fmt.Errorf("drop injection %q: %w", s, err)
	}
	n, err := strconv.ParseUint(every, 10, 64)
	if err != nil || n == 0 {
		return DropInjection{}, fmt.Errorf("drop injection %q: EVERY must be a whole number above 0", s)
	}
	return DropInjection{Lane: lane, Every: n}, nil
}

// Dispatcher routes outbound raft messages into per-peer lanes, each drained
// by its own worker into the Transport. The lanes of a peer are shared by
// every raft group that sends to it (see Group). See the package
// documentation for the caller's duties.
type Dispatcher struct {
	mode        lanes.Mode
	maxInflight int
	transport   Transport
	metrics     *dispatchMetrics
	log         *slog.Logger
	logEvery    uint64
	peerLabel   func(uint64) string
	epoch       time.Time
	inject      DropInjection
	injectSeen  atomic.Uint64
	enqueued    func(uint64, lanes.Lane, *raftpb.Message, time.Time)

	// peersMu is read-locked by every Dispatch and write-locked by
	// AddPeer, RemovePeer and Close, so a peer's queues are never drained
	// while a group enqueues into them.
	peersMu sync.RWMutex
	peers   map[uint64]*lanePeer
	closed  bool

	unknownMu sync.Mutex
	unknown   map[unknownKey]*laneCounters

	groupsMu sync.Mutex
	groups   map[uint64]*Group
	// group0 serves Dispatch, Pending and ApplyReports, for engines that
	// run a single raft group.
	group0 *Group
}

type unknownKey struct {
	to   uint64
	lane lanes.Lane
}

// reportKind is what ApplyReports tells raft about one message.
type reportKind uint8

const (
	// reportUnreachable: the message was dropped or failed.
	reportUnreachable reportKind = iota
	// reportSnapshotFailure: a MsgSnap was dropped or failed; raft must
	// leave snapshot state for that follower, or it waits forever.
	reportSnapshotFailure
	// reportSnapshotFinish: a MsgSnap reached the transport's far side.
	reportSnapshotFinish
)

type report struct {
	to   uint64
	kind reportKind
}

// laneCounters are one (peer, lane)'s metric children, resolved once so the
// hot path never formats labels.
type laneCounters struct {
	dropped prometheus.Counter
	// dropsSeen counts this (peer, lane)'s drops for log rate limiting.
	dropsSeen atomic.Uint64
}

// item is one queued message; enqueuedAt is nanoseconds since the
// dispatcher's epoch, on the monotonic clock.
type item struct {
	group      *Group
	m          *raftpb.Message
	enqueuedAt int64
}

type laneQueue struct {
	lane lanes.Lane
	q    chan item
	laneCounters
	errors prometheus.Counter
	sent   prometheus.Counter
	depth  prometheus.Gauge
	wait   prometheus.Observer
}

type lanePeer struct {
	id     uint64
	label  string
	lanes  [lanes.NumLanes]*laneQueue
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewDispatcher builds a dispatcher with no peers and registers its metrics.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Transport == nil {
		return nil, errors.New("new dispatcher: no transport")
	}
	if cfg.Registerer == nil {
		return nil, errors.New("new dispatcher: no metrics registerer")
	}
	if cfg.Mode != lanes.ModeLegacy && cfg.Mode != lanes.ModeFourLane {
		return nil, fmt.Errorf("new dispatcher: unknown mode %s", cfg.Mode)
	}
	metrics, err := newDispatchMetrics(cfg.Registerer, cfg.Mode)
	if err != nil {
		return nil, fmt.Errorf("new dispatcher: %w", err)
	}
	d := &Dispatcher{
		mode:        cfg.Mode,
		maxInflight: cfg.MaxInflightMsgs,
		transport:   cfg.Transport,
		metrics:     metrics,
		log:         cfg.Logger,
		logEvery:    cfg.DropLogEvery,
		peerLabel:   cfg.PeerLabel,
		epoch:       time.Now(),
		inject:      cfg.InjectDrops,
		enqueued:    cfg.Enqueued,
		peers:       make(map[uint64]*lanePeer),
		unknown:     make(map[unknownKey]*laneCounters),
		groups:      make(map[uint64]*Group),
	}
	d.group0 = d.Group(0)
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.logEvery == 0 {
		d.logEvery = DefaultDropLogEvery
	}
	if d.peerLabel == nil {
		d.peerLabel = func(id uint64) string { return strconv.FormatUint(id, 10) }
	}
	return d, nil
}

// Mode returns the layout the dispatcher runs.
func (d *Dispatcher) Mode() lanes.Mode { return d.mode }

// AddPeer starts the lane workers for a peer. Adding a known peer is a no-op.
func (d *Dispatcher) AddPeer(id uint64) {
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	if d.closed {
		return
	}
	if _, ok := d.peers[id]; ok {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &lanePeer{id: id, label: d.peerLabel(id), cancel: cancel}
	for _, l := range d.mode.Lanes() {
		name := l.String()
		lq := &laneQueue{
			lane:   l,
			q:      make(chan item, lanes.BufferSize(l, d.maxInflight)),
			errors: d.metrics.errors.WithLabelValues(name, p.label),
			sent:   d.metrics.sent.WithLabelValues(name, p.label),
			depth:  d.metrics.depth.WithLabelValues(name, p.label),
			wait:   d.metrics.wait.WithLabelValues(name),
		}
		lq.dropped = d.metrics.dropped.WithLabelValues(name, p.label)
		p.lanes[l] = lq
		p.wg.Add(1)
		go d.runLane(ctx, p, lq)
	}
	d.peers[id] = p
}

// RemovePeer stops a peer's workers, waits for them, and counts the messages
// still queued for it as dropped. Later messages to it are dropped too.
func (d *Dispatcher) RemovePeer(id uint64) {
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	p, ok := d.peers[id]
	if !ok {
		return
	}
	delete(d.peers, id)
	d.stopPeer(p)
}

func (d *Dispatcher) stopPeer(p *lanePeer) {
	p.cancel()
	p.wg.Wait()
	for _, lq := range p.lanes {
		if lq == nil {
			continue
		}
		// The workers are gone and the write lock keeps every group from
		// enqueuing, so the length cannot change under us.
		for len(lq.q) > 0 {
			<-lq.q
			lq.depth.Dec()
			lq.dropped.Inc()
		}
	}
}

// Close stops every worker and waits for them. Messages still queued are
// counted as dropped; later Dispatch calls drop everything.
func (d *Dispatcher) Close() {
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	d.closed = true
	for id, p := range d.peers {
		delete(d.peers, id)
		d.stopPeer(p)
	}
}

// Dispatch queues each message of group 0 in its peer's lane; see
// Group.Dispatch.
func (d *Dispatcher) Dispatch(msgs []*raftpb.Message) { d.group0.Dispatch(msgs) }

// Pending is group 0's; see Group.Pending.
func (d *Dispatcher) Pending() <-chan struct{} { return d.group0.Pending() }

// ApplyReports applies group 0's reports; see Group.ApplyReports.
func (d *Dispatcher) ApplyReports(r Reporter) { d.group0.ApplyReports(r) }

func (d *Dispatcher) dispatch(g *Group, m *raftpb.Message) {
	typ := m.GetType()
	lane, ok := lanes.Route(d.mode, typ)
	if !ok {
		d.dropUnroutable(g, m)
		return
	}
	to := m.GetTo()
	p := d.peers[to]
	if p == nil {
		d.drop(g, d.unknownCounters(to, lane), lane, to, typ)
		return
	}
	lq := p.lanes[lane]
	if d.inject.Every > 0 && lane == d.inject.Lane {
		if d.injectSeen.Add(1)%d.inject.Every == 0 {
			d.drop(g, &lq.laneCounters, lane, to, typ)
			return
		}
	}
	// Checking first keeps the drop path free of the clock read; the
	// select still drops rather than waits if another group filled the
	// lane in between.
	if len(lq.q) == cap(lq.q) {
		d.drop(g, &lq.laneCounters, lane, to, typ)
		return
	}
	now := time.Now()
	if d.enqueued != nil {
		// Before the enqueue: once queued, the message may arrive at the
		// peer before a later call could run.
		d.enqueued(g.id, lane, m, now)
	}
	select {
	case lq.q <- item{group: g, m: m, enqueuedAt: int64(now.Sub(d.epoch))}:
		lq.depth.Inc()
	default:
		d.drop(g, &lq.laneCounters, lane, to, typ)
	}
}

func (d *Dispatcher) drop(g *Group, c *laneCounters, lane lanes.Lane, to uint64, typ raftpb.MessageType) {
	c.dropped.Inc()
	g.local = append(g.local, report{to: to, kind: reportUnreachable})
	if typ == raftpb.MessageType_MsgSnap {
		g.local = append(g.local, report{to: to, kind: reportSnapshotFailure})
	}
	if seen := c.dropsSeen.Add(1); seen == 1 || seen%d.logEvery == 0 {
		d.log.Warn("raft message dropped before transport",
			"lane", lane.String(), "peer", d.peerLabel(to), "group", g.id, "type", typ.String(),
			"drops_in_lane", seen)
	}
}

// dropUnroutable handles a message the routing table has no lane for: a
// local-only type raft should never hand out, or a type added upstream. It
// is counted in the layout's catch-all lane and logged every time, since it
// means the routing table is out of date.
func (d *Dispatcher) dropUnroutable(g *Group, m *raftpb.Message) {
	lane := lanes.LaneOther
	if d.mode == lanes.ModeLegacy {
		lane = lanes.LaneNormal
	}
	to := m.GetTo()
	c := d.unknownCounters(to, lane)
	c.dropped.Inc()
	g.local = append(g.local, report{to: to, kind: reportUnreachable})
	d.log.Error("raft message type has no lane; dropped",
		"type", m.GetType().String(), "peer", d.peerLabel(to), "group", g.id)
}

// unknownCounters returns the drop counter for messages to a peer without
// workers, cached so repeated drops do not allocate.
func (d *Dispatcher) unknownCounters(to uint64, lane lanes.Lane) *laneCounters {
	d.unknownMu.Lock()
	defer d.unknownMu.Unlock()
	key := unknownKey{to: to, lane: lane}
	c, ok := d.unknown[key]
	if !ok {
		c = &laneCounters{dropped: d.metrics.dropped.WithLabelValues(lane.String(), d.peerLabel(to))}
		d.unknown[key] = c
	}
	return c
}

func (d *Dispatcher) runLane(ctx context.Context, p *lanePeer, lq *laneQueue) {
	defer p.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-lq.q:
			lq.depth.Dec()
			lq.wait.Observe(time.Duration(int64(time.Since(d.epoch)) - it.enqueuedAt).Seconds())
			err := d.transport.Send(ctx, lq.lane, it.group.id, it.m)
			isSnap := it.m.GetType() == raftpb.MessageType_MsgSnap
			switch {
			case err == nil:
				lq.sent.Inc()
				if isSnap {
					it.group.pushRemote(report{to: p.id, kind: reportSnapshotFinish})
				}
			case ctx.Err() != nil:
				// The peer was removed or the dispatcher closed mid-send:
				// the message never left, and nobody is left to tell.
				lq.dropped.Inc()
			default:
				lq.errors.Inc()
				it.group.pushRemote(report{to: p.id, kind: reportUnreachable})
				if isSnap {
					it.group.pushRemote(report{to: p.id, kind: reportSnapshotFailure})
				}
			}
		}
	}
}

func apply(r Reporter, rep report) {
	switch rep.kind {
	case reportUnreachable:
		r.ReportUnreachable(rep.to)
	case reportSnapshotFailure:
		r.ReportSnapshot(rep.to, raft.SnapshotFailure)
	case reportSnapshotFinish:
		r.ReportSnapshot(rep.to, raft.SnapshotFinish)
	}
}
