package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sync/semaphore"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
)

var (
	// ErrTransportClosed is returned by Send after Close, and by sends that
	// Close interrupted.
	ErrTransportClosed = errors.New("transport closed")
	// ErrUnknownPeer is returned by Send when the message is addressed to a
	// node that has no address (never added, or removed).
	ErrUnknownPeer = errors.New("unknown peer")
	// ErrPeerUnreachable is returned by Send when the lane's connection could
	// not be opened, or when an earlier attempt failed and the transport is
	// waiting out its reconnect backoff.
	ErrPeerUnreachable = errors.New("peer unreachable")
	// ErrConnLost is returned by Send when the lane's connection broke before
	// or during the send (the peer closed it, restarted, or the network failed).
	ErrConnLost = errors.New("connection lost")
	// ErrPeerRejected is returned by Send when the peer closed the connection
	// saying why (wrong node, unsupported version, a frame it refused).
	ErrPeerRejected = errors.New("peer rejected the connection")
	// ErrSnapshotRejected is returned by Send for a MsgSnap that arrived whole
	// but that the peer's handler refused.
	ErrSnapshotRejected = errors.New("peer rejected the snapshot")
)

// TCP carries raft messages between nodes over TCP with one
// connection per (peer, lane), so a snapshot's bytes already in one socket
// never delay the heartbeats and appends travelling in the others. It
// implements the dispatcher's Transport.
//
// Outbound connections are opened on the first send to a (peer, lane) and
// reopened after they break; a failed dial backs off before the next try, and
// sends in the meantime fail at once, which the dispatcher turns into
// ReportUnreachable. A MsgSnap is streamed in chunks and Send returns only
// when the peer has confirmed it, so its result is the snapshot's outcome.
type TCP struct {
	cfg    Config
	ln     net.Listener
	ctx    context.Context // cancelled by Close; bounds handlers and dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	serverTLS *tls.Config // nil without TLS

	mu      sync.Mutex
	closed  bool
	peers   map[uint64]*peer
	inbound map[net.Conn]struct{} // every accepted connection, by its TCP conn
	pending int                   // accepted connections not yet authenticated
	byLane  map[laneKey]*inboundConn
	budgets map[uint64]*semaphore.Weighted // per peer, MaxPeerBufferBytes
}

// laneKey names one authenticated inbound connection: a peer's lane.
type laneKey struct {
	peer uint64
	lane lanes.Lane
}

// peer is one remote node: its address and its lanes' connections.
type peer struct {
	addr  string
	lanes [lanes.NumLanes]*outConn
}

var _ node.Transport = (*TCP)(nil)

// New starts listening and returns the transport. Close stops it.
func New(cfg Config) (*TCP, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("transport listen on %s: %w", cfg.Listen, err)
		}
	}
	if cfg.TLS == nil && !cfg.Insecure && !IsLoopback(ln.Addr()) {
		_ = ln.Close()
		return nil, fmt.Errorf("transport on %s: %w", ListenAddr(cfg.Listen, ln), ErrInsecureListen)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCP{
		cfg:     cfg,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[uint64]*peer),
		inbound: make(map[net.Conn]struct{}),
		byLane:  make(map[laneKey]*inboundConn),
		budgets: make(map[uint64]*semaphore.Weighted),
	}
	if cfg.TLS != nil {
		t.serverTLS = t.newServerTLS()
	}
	for id, addr := range cfg.Peers {
		t.peers[id] = t.newPeer(id, addr)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *TCP) newPeer(id uint64, addr string) *peer {
	p := &peer{addr: addr}
	for i := range p.lanes {
		p.lanes[i] = &outConn{t: t, peer: id, lane: lanes.Lane(i), addr: addr}
	}
	return p
}

// Addr is the address the transport accepts connections on.
func (t *TCP) Addr() net.Addr { return t.ln.Addr() }

// AddPeer sets the address of node id. Changing the address of a known peer
// closes its connections; the next send dials the new address.
func (t *TCP) AddPeer(id uint64, addr string) error {
	switch {
	case id == 0 || addr == "":
		return fmt.Errorf("add peer %d=%q: want a non-zero id and an address", id, addr)
	case id == t.cfg.ID:
		return fmt.Errorf("add peer %d=%q: that is this node's own id", id, addr)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("add peer %d: %w", id, ErrTransportClosed)
	}
	old := t.peers[id]
	if old != nil && old.addr == addr {
		t.mu.Unlock()
		return nil
	}
	t.peers[id] = t.newPeer(id, addr)
	t.mu.Unlock()
	if old != nil {
		old.close(fmt.Errorf("peer %d moved to %s", id, addr))
	}
	return nil
}

// RemovePeer forgets node id and closes its connections, both ways; sends
// to it in progress fail, later ones return ErrUnknownPeer, and its new
// connections are refused.
func (t *TCP) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	delete(t.budgets, id)
	var inbound []net.Conn
	for key, in := range t.byLane {
		if key.peer == id {
			inbound = append(inbound, in.tcp)
		}
	}
	t.mu.Unlock()
	if p != nil {
		p.close(fmt.Errorf("%w: peer %d removed", ErrUnknownPeer, id))
	}
	for _, c := range inbound {
		_ = c.Close()
	}
}

func (p *peer) close(cause error) {
	for _, oc := range p.lanes {
		oc.close(cause)
	}
}

// Close stops accepting, closes every connection, waits for all of the
// transport's goroutines and returns. Sends in progress fail.
func (t *TCP) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := t.peers
	t.peers = nil
	conns := make([]net.Conn, 0, len(t.inbound))
	for c := range t.inbound {
		conns = append(conns, c)
	}
	t.mu.Unlock()

	t.cancel()
	err := t.ln.Close()
	for _, p := range peers {
		p.close(ErrTransportClosed)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	t.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close transport listener: %w", err)
	}
	return nil
}

// Send writes m, a message of raft group group, to peer m.GetTo() on lane's
// connection, dialling it first if needed. All groups' messages to one peer
// share that peer's lane connections. It returns when the message is in the kernel's send buffer, or, for
// a MsgSnap with data, when the peer has confirmed the whole snapshot. Sends
// on one (peer, lane) are serialised; different lanes proceed in parallel.
func (t *TCP) Send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	var start time.Time
	if t.cfg.Trace != nil {
		start = time.Now()
	}
	err := t.send(ctx, lane, group, m)
	if err != nil {
		err = fmt.Errorf("send %s of group %d to peer %d on lane %s: %w", m.GetType(), group, m.GetTo(), lane, err)
	}
	if t.cfg.Trace != nil {
		t.cfg.Trace(TraceEvent{Peer: m.GetTo(), Lane: lane, Group: group, Msg: m, Start: start, End: time.Now(), Err: err})
	}
	return err
}

func (t *TCP) send(ctx context.Context, lane lanes.Lane, group uint64, m *raftpb.Message) error {
	if int(lane) >= lanes.NumLanes {
		return fmt.Errorf("lane %d does not exist", uint8(lane))
	}
	t.mu.Lock()
	closed := t.closed
	p := t.peers[m.GetTo()]
	t.mu.Unlock()
	if closed {
		return ErrTransportClosed
	}
	if p == nil {
		return ErrUnknownPeer
	}
	return p.lanes[lane].send(ctx, group, m)
}
