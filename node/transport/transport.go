package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lanectl/lanectl/lanes"
)

// Defaults of TCPTransportConfig.
const (
	DefaultChunkSize          = 1 << 20
	DefaultMaxFrameBytes      = 64 << 20
	DefaultMaxSnapshotBytes   = 1 << 30
	DefaultDialTimeout        = 2 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultHandshakeTimeout   = 5 * time.Second
	DefaultSnapshotAckTimeout = time.Minute
	DefaultMinBackoff         = 20 * time.Millisecond
	DefaultMaxBackoff         = 2 * time.Second
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

// MessageHandler receives one inbound raft message. It is called from the
// goroutine reading that message's connection, so messages of one (peer,
// lane) arrive in order; it may block (back-pressure slows that lane only). ctx is
// cancelled when the transport closes. An error drops the message (for a
// MsgSnap, the sender is told the snapshot was rejected).
type MessageHandler func(ctx context.Context, m *raftpb.Message) error

// DialFunc opens the connection that carries one lane to one peer. Tests and
// benchmarks replace it to put a simulated link in the way.
type DialFunc func(ctx context.Context, peer uint64, lane lanes.Lane, addr string) (net.Conn, error)

// TraceEvent is one message seen by a TCPTransport's Trace hook.
type TraceEvent struct {
	// Received is true for an inbound message, false for an outbound one.
	Received bool
	// Peer is the other node: the destination of a sent message, the
	// sender of a received one.
	Peer uint64
	Lane lanes.Lane
	Msg  *raftpb.Message
	// Start is when Send began (outbound) or when the message was whole
	// (inbound); End is when Send returned, or Start for inbound messages.
	Start, End time.Time
	// Err is Send's result.
	Err error
}

// TCPTransportConfig configures a TCPTransport. Zero durations and sizes mean
// the Default* values.
type TCPTransportConfig struct {
	// ID is this node's raft id. It is written in the preamble of every
	// connection this node opens and checked against the preamble of every
	// connection it accepts.
	ID uint64
	// Listen is the TCP address to accept connections on ("127.0.0.1:0"
	// picks a free port). Ignored when Listener is set.
	Listen string
	// Listener, when set, is used instead of listening on Listen. The
	// transport closes it.
	Listener net.Listener
	// Peers maps raft ids to addresses; AddPeer and RemovePeer change it.
	Peers map[uint64]string
	// Handler receives inbound messages. Required.
	Handler MessageHandler
	// Dial opens outbound connections. Nil dials TCP with DialTimeout.
	Dial DialFunc
	// Logger receives connection-level events. Nil discards them.
	Logger *slog.Logger
	// Trace, when set, sees every message this transport sends (after the
	// send returns) and receives (just before the handler). Benchmarks time
	// lanes with it. It runs on the sending or reading goroutine and must
	// not block or modify the message.
	Trace func(TraceEvent)

	// ChunkSize is the size of the pieces a snapshot is streamed in.
	ChunkSize int
	// MaxFrameBytes bounds every inbound frame, and every outbound message.
	MaxFrameBytes int
	// MaxSnapshotBytes bounds the data of an inbound snapshot, which is
	// reassembled in memory.
	MaxSnapshotBytes int64
	// DialTimeout bounds opening a connection.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one frame (one snapshot chunk).
	WriteTimeout time.Duration
	// HandshakeTimeout bounds reading an inbound connection's preamble.
	HandshakeTimeout time.Duration
	// SnapshotAckTimeout bounds the wait for the peer to confirm a snapshot
	// after its last byte was written.
	SnapshotAckTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed dials of one
	// (peer, lane); the wait doubles per failure.
	MinBackoff, MaxBackoff time.Duration
}

func (c *TCPTransportConfig) applyDefaults() error {
	if c.ID == 0 {
		return errors.New("transport config: ID must be a non-zero raft id")
	}
	if c.Handler == nil {
		return errors.New("transport config: Handler is required")
	}
	if c.Listener == nil && c.Listen == "" {
		return errors.New("transport config: Listen or Listener is required")
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"ChunkSize", &c.ChunkSize, DefaultChunkSize},
		{"MaxFrameBytes", &c.MaxFrameBytes, DefaultMaxFrameBytes},
	} {
		if *f.v < 0 {
			return fmt.Errorf("transport config: %s is %d, want >= 0", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxFrameBytes < minFrameLimitLen {
		return fmt.Errorf("transport config: MaxFrameBytes is %d, want >= %d", c.MaxFrameBytes, minFrameLimitLen)
	}
	if c.ChunkSize > c.MaxFrameBytes {
		return fmt.Errorf("transport config: ChunkSize %d is larger than MaxFrameBytes %d", c.ChunkSize, c.MaxFrameBytes)
	}
	if c.MaxSnapshotBytes < 0 {
		return fmt.Errorf("transport config: MaxSnapshotBytes is %d, want >= 0", c.MaxSnapshotBytes)
	}
	if c.MaxSnapshotBytes == 0 {
		c.MaxSnapshotBytes = DefaultMaxSnapshotBytes
	}
	for _, f := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"DialTimeout", &c.DialTimeout, DefaultDialTimeout},
		{"WriteTimeout", &c.WriteTimeout, DefaultWriteTimeout},
		{"HandshakeTimeout", &c.HandshakeTimeout, DefaultHandshakeTimeout},
		{"SnapshotAckTimeout", &c.SnapshotAckTimeout, DefaultSnapshotAckTimeout},
		{"MinBackoff", &c.MinBackoff, DefaultMinBackoff},
		{"MaxBackoff", &c.MaxBackoff, DefaultMaxBackoff},
	} {
		if *f.v < 0 {
			return fmt.Errorf("transport config: %s is %v, want >= 0", f.name, *f.v)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if c.MaxBackoff < c.MinBackoff {
		return fmt.Errorf("transport config: MaxBackoff %v is below MinBackoff %v", c.MaxBackoff, c.MinBackoff)
	}
	for id, addr := range c.Peers {
		if id == 0 || addr == "" {
			return fmt.Errorf("transport config: peer %d=%q: want a non-zero id and an address", id, addr)
		}
		if id == c.ID {
			return fmt.Errorf("transport config: peer %d=%q is this node's own id", id, addr)
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// TCPTransport carries raft messages between nodes over TCP with one
// connection per (peer, lane), so a snapshot's bytes already in one socket
// never delay the heartbeats and appends travelling in the others. It
// implements the dispatcher's Transport.
//
// Outbound connections are opened on the first send to a (peer, lane) and
// reopened after they break; a failed dial backs off before the next try, and
// sends in the meantime fail at once, which the dispatcher turns into
// ReportUnreachable. A MsgSnap is streamed in chunks and Send returns only
// when the peer has confirmed it, so its result is the snapshot's outcome.
type TCPTransport struct {
	cfg    TCPTransportConfig
	ln     net.Listener
	ctx    context.Context // cancelled by Close; bounds handlers and dials
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	peers   map[uint64]*peer
	inbound map[net.Conn]struct{}
}

// peer is one remote node: its address and its lanes' connections.
type peer struct {
	addr  string
	lanes [lanes.NumLanes]*outConn
}

var _ Transport = (*TCPTransport)(nil)

// NewTCPTransport starts listening and returns the transport. Close stops it.
func NewTCPTransport(cfg TCPTransportConfig) (*TCPTransport, error) {
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
	ctx, cancel := context.WithCancel(context.Background())
	t := &TCPTransport{
		cfg:     cfg,
		ln:      ln,
		ctx:     ctx,
		cancel:  cancel,
		peers:   make(map[uint64]*peer),
		inbound: make(map[net.Conn]struct{}),
	}
	for id, addr := range cfg.Peers {
		t.peers[id] = t.newPeer(id, addr)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

func (t *TCPTransport) newPeer(id uint64, addr string) *peer {
	p := &peer{addr: addr}
	for i := range p.lanes {
		p.lanes[i] = &outConn{t: t, peer: id, lane: lanes.Lane(i), addr: addr}
	}
	return p
}

// Addr is the address the transport accepts connections on.
func (t *TCPTransport) Addr() net.Addr { return t.ln.Addr() }

// AddPeer sets the address of node id. Changing the address of a known peer
// closes its connections; the next send dials the new address.
func (t *TCPTransport) AddPeer(id uint64, addr string) error {
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

// RemovePeer forgets node id and closes its connections; sends to it in
// progress fail and later ones return ErrUnknownPeer.
func (t *TCPTransport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	t.mu.Unlock()
	if p != nil {
		p.close(fmt.Errorf("%w: peer %d removed", ErrUnknownPeer, id))
	}
}

func (p *peer) close(cause error) {
	for _, oc := range p.lanes {
		oc.close(cause)
	}
}

// Close stops accepting, closes every connection, waits for all of the
// transport's goroutines and returns. Sends in progress fail.
func (t *TCPTransport) Close() error {
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

// Send writes m to peer m.GetTo() on lane's connection, dialling it first if
// needed. It returns when the message is in the kernel's send buffer, or, for
// a MsgSnap with data, when the peer has confirmed the whole snapshot. Sends
// on one (peer, lane) are serialised; different lanes proceed in parallel.
func (t *TCPTransport) Send(ctx context.Context, lane lanes.Lane, m *raftpb.Message) error {
	var start time.Time
	if t.cfg.Trace != nil {
		start = time.Now()
	}
	err := t.send(ctx, lane, m)
	if err != nil {
		err = fmt.Errorf("send %s to peer %d on lane %s: %w", m.GetType(), m.GetTo(), lane, err)
	}
	if t.cfg.Trace != nil {
		t.cfg.Trace(TraceEvent{Peer: m.GetTo(), Lane: lane, Msg: m, Start: start, End: time.Now(), Err: err})
	}
	return err
}

func (t *TCPTransport) send(ctx context.Context, lane lanes.Lane, m *raftpb.Message) error {
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
	return p.lanes[lane].send(ctx, m)
}

// outConn is the sending side of one (peer, lane): the current connection,
// if any, and the reconnect backoff.
type outConn struct {
	t    *TCPTransport
	peer uint64
	lane lanes.Lane
	addr string

	// sendMu serialises sends, and is held across a whole snapshot. It
	// guards the fields below it.
	sendMu   sync.Mutex
	buf      []byte
	backoff  time.Duration
	retryAt  time.Time
	retryErr error

	mu     sync.Mutex
	closed error // why the outConn was closed; nil while open
	sess   *session
}

// session is one TCP connection of an outConn, with the goroutine that reads
// the peer's status frames from it.
type session struct {
	conn   net.Conn
	status chan statusMsg // snapshot outcomes; capacity 1
	done   chan struct{}  // closed when the reader goroutine has exited

	once  sync.Once
	mu    sync.Mutex
	cause error
}

type statusMsg struct {
	code   statusCode
	reason string
}

// fail records why the session ended (the first reason wins) and closes the
// connection, which unblocks any write in progress and ends the reader.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.mu.Lock()
		s.cause = err
		s.mu.Unlock()
		_ = s.conn.Close()
	})
}

func (s *session) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cause
}

// failure ends the session after a failed write and returns the reason it
// ended, which is more useful than the write's own error when the reader or
// a cancelled context got there first.
func (s *session) failure(err error) error {
	if s.err() == nil {
		// A peer that refuses something says why just before closing;
		// give the reader a moment to read that instead of reporting a
		// bare broken pipe.
		select {
		case <-s.done:
		case <-time.After(statusGrace):
		}
	}
	s.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
	return s.err()
}

// statusGrace is how long a failed write waits for the peer's reason.
const statusGrace = 200 * time.Millisecond

func (oc *outConn) close(cause error) {
	oc.mu.Lock()
	if oc.closed == nil {
		oc.closed = cause
	}
	s := oc.sess
	oc.sess = nil
	oc.mu.Unlock()
	if s != nil {
		s.fail(cause)
	}
}

func (oc *outConn) send(ctx context.Context, m *raftpb.Message) error {
	oc.sendMu.Lock()
	defer oc.sendMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := oc.session(ctx)
	if err != nil {
		return err
	}
	// A write cannot be interrupted any other way; a half-written frame
	// leaves the connection useless anyway.
	stop := context.AfterFunc(ctx, func() {
		s.fail(fmt.Errorf("send abandoned: %w", context.Cause(ctx)))
	})
	defer stop()
	if m.GetType() == raftpb.MessageType_MsgSnap && len(m.GetSnapshot().GetData()) > 0 {
		return oc.writeSnapshot(s, m)
	}
	return oc.writeMessage(s, m)
}

// session returns the live connection, dialling a new one when there is none.
func (oc *outConn) session(ctx context.Context) (*session, error) {
	oc.mu.Lock()
	s, closed := oc.sess, oc.closed
	oc.mu.Unlock()
	if closed != nil {
		return nil, closed
	}
	if s != nil {
		cause := s.err()
		if cause == nil {
			return s, nil
		}
		oc.mu.Lock()
		if oc.sess == s {
			oc.sess = nil
		}
		oc.mu.Unlock()
		if errors.Is(cause, ErrPeerRejected) {
			// The peer answers but refuses us: redialling at once would
			// only spin.
			oc.noteFailure(cause)
		}
	}
	if now := time.Now(); now.Before(oc.retryAt) {
		return nil, fmt.Errorf("%w: next dial in %v; last attempt: %w",
			ErrPeerUnreachable, oc.retryAt.Sub(now).Round(time.Millisecond), oc.retryErr)
	}
	conn, err := oc.dial(ctx)
	if err != nil {
		oc.noteFailure(err)
		return nil, fmt.Errorf("%w: %w", ErrPeerUnreachable, err)
	}
	oc.backoff, oc.retryAt, oc.retryErr = 0, time.Time{}, nil
	s = &session{conn: conn, status: make(chan statusMsg, 1), done: make(chan struct{})}

	t := oc.t
	t.mu.Lock()
	oc.mu.Lock()
	if t.closed || oc.closed != nil {
		cause := oc.closed
		oc.mu.Unlock()
		t.mu.Unlock()
		_ = conn.Close()
		if cause == nil {
			cause = ErrTransportClosed
		}
		return nil, cause
	}
	oc.sess = s
	t.wg.Add(1)
	oc.mu.Unlock()
	t.mu.Unlock()
	go oc.readStatus(s)
	return s, nil
}

func (oc *outConn) noteFailure(err error) {
	cfg := &oc.t.cfg
	oc.backoff = min(max(2*oc.backoff, cfg.MinBackoff), cfg.MaxBackoff)
	oc.retryAt = time.Now().Add(oc.backoff)
	oc.retryErr = err
}

// dial opens the connection and writes its preamble.
func (oc *outConn) dial(ctx context.Context) (net.Conn, error) {
	t := oc.t
	dctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	defer cancel()
	stop := context.AfterFunc(t.ctx, cancel)
	defer stop()
	var (
		conn net.Conn
		err  error
	)
	if t.cfg.Dial != nil {
		conn, err = t.cfg.Dial(dctx, oc.peer, oc.lane, oc.addr)
	} else {
		var d net.Dialer
		conn, err = d.DialContext(dctx, "tcp", oc.addr)
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", oc.addr, err)
	}
	pre := preamble{version: wireVersion, lane: oc.lane, from: t.cfg.ID, to: oc.peer}
	_ = conn.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	if _, err := conn.Write(pre.marshal()); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("write preamble to %s: %w", oc.addr, err)
	}
	return conn, nil
}

// readStatus reads what the peer sends back on the connection (snapshot
// outcomes, or why it is closing) until the connection ends. A peer that
// closes its end is noticed here at once, so the next send redials instead of
// writing into a dead socket.
func (oc *outConn) readStatus(s *session) {
	defer oc.t.wg.Done()
	defer close(s.done)
	fr := frameReader{r: bufio.NewReaderSize(s.conn, 1024), limit: statusPrefix + maxReasonLen}
	for {
		kind, n, sum, err := fr.header()
		if err == nil && kind != frameStatus {
			err = badFrame("peer sent a %s frame; only status frames travel back", kind)
		}
		var p []byte
		if err == nil {
			p, err = fr.payload(kind, n, sum)
		}
		if err == nil && len(p) < statusPrefix {
			err = badFrame("empty status frame")
		}
		if err != nil {
			s.fail(fmt.Errorf("%w: peer %d lane %s: %w", ErrConnLost, oc.peer, oc.lane, err))
			return
		}
		st := statusMsg{code: statusCode(p[0]), reason: string(p[statusPrefix:])}
		if st.code == statusConnRejected {
			s.fail(fmt.Errorf("%w: %s", ErrPeerRejected, st.reason))
			return
		}
		select {
		case s.status <- st:
		default:
			s.fail(badFrame("peer sent a status frame no snapshot was waiting for"))
			return
		}
	}
}

// maxKeptBuffer bounds the encode buffer an outConn keeps between sends, so
// one large append does not pin its memory for the connection's life.
const maxKeptBuffer = 1 << 20

func (oc *outConn) writeMessage(s *session, m *raftpb.Message) error {
	var header [frameHeaderLen]byte
	buf, err := proto.MarshalOptions{}.MarshalAppend(append(oc.buf[:0], header[:]...), m)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if n := len(buf) - frameHeaderLen; n > oc.t.cfg.MaxFrameBytes {
		return fmt.Errorf("message is %d bytes, over the %d-byte frame limit", n, oc.t.cfg.MaxFrameBytes)
	}
	putFrameHeader(buf, frameMessage, buf[frameHeaderLen:])
	if cap(buf) <= maxKeptBuffer {
		oc.buf = buf[:0]
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(oc.t.cfg.WriteTimeout))
	if _, err := s.conn.Write(buf); err != nil {
		return s.failure(err)
	}
	return nil
}

// writeSnapshot streams a MsgSnap: a begin frame with the message minus its
// data, then the data in ChunkSize pieces written straight from the
// message's buffer, then waits for the peer's verdict.
func (oc *outConn) writeSnapshot(s *session, m *raftpb.Message) error {
	cfg := &oc.t.cfg
	data := m.GetSnapshot().GetData()
	head, err := proto.Marshal(withoutSnapshotData(m))
	if err != nil {
		return fmt.Errorf("encode snapshot header: %w", err)
	}
	if snapBeginPrefix+len(head) > cfg.MaxFrameBytes {
		return fmt.Errorf("snapshot header is %d bytes, over the %d-byte frame limit", len(head), cfg.MaxFrameBytes)
	}
	begin := make([]byte, snapBeginPrefix, snapBeginPrefix+len(head))
	binary.BigEndian.PutUint64(begin, uint64(len(data)))
	begin = append(begin, head...)

	// A verdict left over from an abandoned snapshot would be taken for
	// this one's.
	select {
	case <-s.status:
	default:
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
	if _, err := s.conn.Write(encodeFrame(frameSnapBegin, begin)); err != nil {
		return s.failure(err)
	}
	var header [frameHeaderLen]byte
	for off := 0; off < len(data); off += cfg.ChunkSize {
		chunk := data[off:min(off+cfg.ChunkSize, len(data))]
		putFrameHeader(header[:], frameSnapChunk, chunk)
		_ = s.conn.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
		bufs := net.Buffers{header[:], chunk}
		if _, err := bufs.WriteTo(s.conn); err != nil {
			return s.failure(fmt.Errorf("after %d of %d snapshot bytes: %w", off, len(data), err))
		}
	}

	timer := time.NewTimer(cfg.SnapshotAckTimeout)
	defer timer.Stop()
	select {
	case st := <-s.status:
		if st.code == statusSnapshotApplied {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrSnapshotRejected, st.reason)
	case <-s.done:
		return s.err()
	case <-timer.C:
		return s.failure(fmt.Errorf("no verdict on the %d-byte snapshot within %v", len(data), cfg.SnapshotAckTimeout))
	}
}

// withoutSnapshotData returns a message with every field of m except the
// snapshot's data, sharing m's memory rather than copying it. Going through
// reflection keeps fields added to raftpb.Message in later raft versions.
func withoutSnapshotData(m *raftpb.Message) *raftpb.Message {
	out := &raftpb.Message{}
	src, dst := m.ProtoReflect(), out.ProtoReflect()
	snapField := src.Descriptor().Fields().ByNumber(snapshotFieldNumber)
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd != snapField {
			dst.Set(fd, v)
		}
		return true
	})
	out.Snapshot = &raftpb.Snapshot{Metadata: m.GetSnapshot().GetMetadata()}
	return out
}

// snapshotFieldNumber is raftpb.Message's snapshot field.
const snapshotFieldNumber = 9
