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
// by its own worker into the Transport. See the package documentation for
// the caller's duties.
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
	injectSeen  uint64

	// Owned by the goroutine that owns the RawNode.
	peers   map[uint64]*lanePeer
	unknown map[unknownKey]*laneCounters
	local   []report
	closed  bool

	// Reports produced by workers.
	mu      sync.Mutex
	remote  []report
	spare   []report
	hasRem  atomic.Bool
	pending chan struct{}
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
	dropsSeen uint64
}

// item is one queued message; enqueuedAt is nanoseconds since the
// dispatcher's epoch, on the monotonic clock.
type item struct {
	group      uint64
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
		peers:       make(map[uint64]*lanePeer),
		unknown:     make(map[unknownKey]*laneCounters),
		pending:     make(chan struct{}, 1),
	}
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
		// The workers are gone and only this goroutine enqueues, so the
		// length cannot change under us.
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
	d.closed = true
	for id, p := range d.peers {
		delete(d.peers, id)
		d.stopPeer(p)
	}
}

// Dispatch queues each message in its peer's lane. It never blocks: a full
// lane, an unknown peer or a message type the routing table does not know is
// a counted drop, reported to raft at the next ApplyReports.
func (d *Dispatcher) Dispatch(msgs []*raftpb.Message) {
	for _, m := range msgs {
		d.dispatch(m)
	}
}

func (d *Dispatcher) dispatch(m *raftpb.Message) {
	typ := m.GetType()
	lane, ok := lanes.Route(d.mode, typ)
	if !ok {
		d.dropUnroutable(m)
		return
	}
	to := m.GetTo()
	p := d.peers[to]
	if p == nil {
		d.drop(d.unknownCounters(to, lane), lane, to, typ)
		return
	}
	lq := p.lanes[lane]
	if d.inject.Every > 0 && lane == d.inject.Lane {
		d.injectSeen++
		if d.injectSeen%d.inject.Every == 0 {
			d.drop(&lq.laneCounters, lane, to, typ)
			return
		}
	}
	// Raft's goroutine is the only producer, so a lane with room now still
	// has room when we send. Checking first keeps the drop path free of the
	// clock read and the channel lock.
	if len(lq.q) == cap(lq.q) {
		d.drop(&lq.laneCounters, lane, to, typ)
		return
	}
	lq.q <- item{m: m, enqueuedAt: int64(time.Since(d.epoch))}
	lq.depth.Inc()
}

func (d *Dispatcher) drop(c *laneCounters, lane lanes.Lane, to uint64, typ raftpb.MessageType) {
	c.dropped.Inc()
	d.local = append(d.local, report{to: to, kind: reportUnreachable})
	if typ == raftpb.MessageType_MsgSnap {
		d.local = append(d.local, report{to: to, kind: reportSnapshotFailure})
	}
	c.dropsSeen++
	if c.dropsSeen == 1 || c.dropsSeen%d.logEvery == 0 {
		d.log.Warn("raft message dropped before transport",
			"lane", lane.String(), "peer", d.peerLabel(to), "type", typ.String(),
			"drops_in_lane", c.dropsSeen)
	}
}

// dropUnroutable handles a message the routing table has no lane for: a
// local-only type raft should never hand out, or a type added upstream. It
// is counted in the layout's catch-all lane and logged every time, since it
// means the routing table is out of date.
func (d *Dispatcher) dropUnroutable(m *raftpb.Message) {
	lane := lanes.LaneOther
	if d.mode == lanes.ModeLegacy {
		lane = lanes.LaneNormal
	}
	to := m.GetTo()
	c := d.unknownCounters(to, lane)
	c.dropped.Inc()
	d.local = append(d.local, report{to: to, kind: reportUnreachable})
	d.log.Error("raft message type has no lane; dropped",
		"type", m.GetType().String(), "peer", d.peerLabel(to))
}

// unknownCounters returns the drop counter for messages to a peer without
// workers, cached so repeated drops do not allocate.
func (d *Dispatcher) unknownCounters(to uint64, lane lanes.Lane) *laneCounters {
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
			err := d.transport.Send(ctx, lq.lane, it.group, it.m)
			isSnap := it.m.GetType() == raftpb.MessageType_MsgSnap
			switch {
			case err == nil:
				lq.sent.Inc()
				if isSnap {
					d.pushRemote(report{to: p.id, kind: reportSnapshotFinish})
				}
			case ctx.Err() != nil:
				// The peer was removed or the dispatcher closed mid-send:
				// the message never left, and nobody is left to tell.
				lq.dropped.Inc()
			default:
				lq.errors.Inc()
				d.pushRemote(report{to: p.id, kind: reportUnreachable})
				if isSnap {
					d.pushRemote(report{to: p.id, kind: reportSnapshotFailure})
				}
			}
		}
	}
}

func (d *Dispatcher) pushRemote(r report) {
	d.mu.Lock()
	d.remote = append(d.remote, r)
	d.hasRem.Store(true)
	d.mu.Unlock()
	select {
	case d.pending <- struct{}{}:
	default:
	}
}

// Pending becomes readable when workers have reports waiting for
// ApplyReports.
func (d *Dispatcher) Pending() <-chan struct{} { return d.pending }

// ApplyReports tells raft about every drop, transport error and finished
// snapshot since the last call.
func (d *Dispatcher) ApplyReports(r Reporter) {
	for _, rep := range d.local {
		apply(r, rep)
	}
	d.local = d.local[:0]
	if !d.hasRem.Load() {
		return
	}
	d.mu.Lock()
	batch := d.remote
	d.remote = d.spare[:0]
	d.hasRem.Store(false)
	d.mu.Unlock()
	for _, rep := range batch {
		apply(r, rep)
	}
	d.spare = batch
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
