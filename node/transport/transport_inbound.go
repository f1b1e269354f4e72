package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"golang.org/x/sync/semaphore"
	"google.golang.org/protobuf/proto"
)

// inboundReadBuffer is the read buffer of an authenticated connection:
// large enough that a stream of small messages costs few syscalls.
const inboundReadBuffer = 64 << 10

// errIdle ends a connection that carried no frame for IdleTimeout.
var errIdle = errors.New("idle")

// acceptLoop accepts connections until the listener is closed.
func (t *TCP) acceptLoop() {
	defer t.wg.Done()
	var delay time.Duration
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry
			// rather than spin or give up on all peers.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t.cfg.Logger.Warn("transport accept failed", "err", err, "retry_in", delay)
			select {
			case <-t.ctx.Done():
				return
			case <-time.After(delay):
			}
			continue
		}
		delay = 0
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		// Strangers must not be able to hold more than a few sockets and
		// goroutines: past the cap, a connection is closed before it is
		// read at all. Members' own connections are not held up by this
		// once authenticated, and a member's dial refused here is retried.
		if t.pending >= t.cfg.MaxPendingConns {
			pending := t.pending
			t.mu.Unlock()
			_ = c.Close()
			t.cfg.Logger.Debug("transport refused a connection: too many handshakes in progress", "remote", c.RemoteAddr().String(), "pending", pending)
			continue
		}
		t.pending++
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(&inboundConn{t: t, tcp: c, conn: c, pending: true})
	}
}

// serve reads one inbound connection until it ends. A connection that breaks
// the protocol or is not authorized is told why before it is closed, so the
// sender's error says it.
func (t *TCP) serve(in *inboundConn) {
	defer t.wg.Done()
	defer t.forget(in)
	err := t.receive(in)
	switch {
	case err == nil || t.ctx.Err() != nil:
		return
	case in.replaced.Load():
		t.cfg.Logger.Debug("transport closed an inbound connection replaced by a newer one", "remote", in.tcp.RemoteAddr().String())
		return
	case errors.Is(err, errIdle):
		t.cfg.Logger.Debug("transport closing idle inbound connection", "remote", in.tcp.RemoteAddr().String(), "err", err)
		return
	}
	t.cfg.Logger.Warn("transport closing inbound connection", "remote", in.tcp.RemoteAddr().String(), "err", err)
	if !errors.Is(err, ErrBadFrame) && !errors.Is(err, ErrUnauthorized) {
		return
	}
	c := in.conn
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	if _, err := c.Write(encodeFrame(frameStatus, statusPayload(statusConnRejected, err.Error()))); err != nil {
		return
	}
	// Closing with unread input would send a reset, which can destroy the
	// reason before the sender reads it: half-close and drain instead,
	// until the sender hangs up or a second passes.
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, c, drainLimit)
}

// drainLimit bounds what a refused connection may still send while its
// reason is on the way.
const drainLimit = 1 << 20

// forget removes a finished connection from the transport's books and
// closes it.
func (t *TCP) forget(in *inboundConn) {
	t.mu.Lock()
	delete(t.inbound, in.tcp)
	if in.pending {
		t.pending--
	}
	key := laneKey{in.pre.from, in.pre.lane}
	if t.byLane[key] == in {
		delete(t.byLane, key)
	}
	t.mu.Unlock()
	_ = in.conn.Close()
}

// admit registers an authenticated connection as its peer's one connection
// for its lane. An older connection of the same (peer, lane) is closed: the
// peer only opens a new one when it believes the old one dead (it restarted,
// or the old socket broke on its side), and a half-open old socket must not
// lock it out. Only the peer itself can authenticate as the peer, so nobody
// else can displace its connections.
func (t *TCP) admit(in *inboundConn) error {
	key := laneKey{in.pre.from, in.pre.lane}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrTransportClosed
	}
	old := t.byLane[key]
	t.byLane[key] = in
	in.pending = false
	t.pending--
	budget := t.budgets[in.pre.from]
	if budget == nil {
		budget = semaphore.NewWeighted(int64(t.cfg.MaxPeerBufferBytes))
		t.budgets[in.pre.from] = budget
	}
	t.mu.Unlock()
	in.budget = budget
	if old != nil {
		old.replaced.Store(true)
		_ = old.tcp.Close()
	}
	return nil
}

// authorize checks that the preamble's sender is a configured peer and, with
// TLS, that the certificate the connection presented names that peer.
func (t *TCP) authorize(pre preamble, certs []*x509.Certificate) error {
	t.mu.Lock()
	_, member := t.peers[pre.from]
	t.mu.Unlock()
	if !member {
		return fmt.Errorf("%w: node %d is not a member of this cluster", ErrUnauthorized, pre.from)
	}
	if t.cfg.TLS == nil {
		return nil
	}
	return t.checkIdentity(certs, pre.from)
}

// receive authenticates the connection (TLS handshake, preamble, identity)
// within HandshakeTimeout, then reads frames, handing each message to the
// handler. It returns nil when the sender closed the connection between
// messages.
func (t *TCP) receive(in *inboundConn) error {
	remote := in.tcp.RemoteAddr()
	_ = in.tcp.SetDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	var certs []*x509.Certificate
	if t.serverTLS != nil {
		tc := tls.Server(in.tcp, t.serverTLS)
		if err := tc.HandshakeContext(t.ctx); err != nil {
			return fmt.Errorf("connection from %s: TLS handshake: %w", remote, err)
		}
		certs = tc.ConnectionState().PeerCertificates
		in.conn = tc
	}
	pre, err := readPreamble(in.conn)
	if err != nil {
		return fmt.Errorf("connection from %s: %w", remote, err)
	}
	if pre.to != t.cfg.ID {
		return fmt.Errorf("connection from node %d (%s): %w", pre.from, remote,
			badFrame("it is meant for node %d, this is node %d", pre.to, t.cfg.ID))
	}
	if err := t.authorize(pre, certs); err != nil {
		return fmt.Errorf("connection from node %d (%s): %w", pre.from, remote, err)
	}
	in.pre = pre
	if err := t.admit(in); err != nil {
		return err
	}
	_ = in.tcp.SetDeadline(time.Time{})
	in.fr = frameReader{r: bufio.NewReaderSize(in.conn, inboundReadBuffer), limit: t.cfg.MaxFrameBytes,
		reserve: in.reserve, release: in.release}
	if err := in.loop(); err != nil {
		return fmt.Errorf("connection from node %d lane %s (%s): %w", pre.from, pre.lane, remote, err)
	}
	return nil
}

// inboundConn is the receiving side of one (peer, lane) connection.
type inboundConn struct {
	t    *TCP
	tcp  net.Conn // as accepted
	conn net.Conn // tcp, or the TLS connection over it
	pre  preamble
	fr   frameReader
	// pending is true until the connection is authenticated; guarded by
	// t.mu.
	pending  bool
	replaced atomic.Bool
	budget   *semaphore.Weighted // the peer's, shared by its lanes
}

// reserve takes n bytes of the peer's buffer budget for a frame in
// progress, waiting at most FrameTimeout for its other lanes to give some
// back.
func (in *inboundConn) reserve(n int) error {
	if in.budget.TryAcquire(int64(n)) {
		return nil
	}
	ctx, cancel := context.WithTimeout(in.t.ctx, in.t.cfg.FrameTimeout)
	defer cancel()
	if err := in.budget.Acquire(ctx, int64(n)); err != nil {
		return fmt.Errorf("node %d already has %d bytes of unfinished frames in flight, its limit, for %v: %w",
			in.pre.from, in.t.cfg.MaxPeerBufferBytes, in.t.cfg.FrameTimeout, err)
	}
	return nil
}

func (in *inboundConn) release(n int) {
	if n > 0 {
		in.budget.Release(int64(n))
	}
}

// header waits at most IdleTimeout for the next frame to start, then gives
// its payload FrameTimeout to arrive.
func (in *inboundConn) header(within time.Duration) (frameKind, int, uint32, error) {
	_ = in.conn.SetReadDeadline(time.Now().Add(within))
	kind, n, sum, err := in.fr.header()
	if err == nil {
		_ = in.conn.SetReadDeadline(time.Now().Add(in.t.cfg.FrameTimeout))
	}
	return kind, n, sum, err
}

func (in *inboundConn) loop() error {
	for {
		kind, n, sum, err := in.header(in.t.cfg.IdleTimeout)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("%w: no frame for %v", errIdle, in.t.cfg.IdleTimeout)
		}
		if err != nil {
			return fmt.Errorf("read frame header: %w", unexpectedEOF(err))
		}
		switch kind {
		case frameMessage:
			p, err := in.fr.payload(kind, n, sum)
			if err != nil {
				return err
			}
			if len(p) < groupPrefix {
				return badFrame("frame %d: message frame of %d bytes is too short", in.fr.count, len(p))
			}
			group := binary.BigEndian.Uint64(p)
			m, err := in.decode(p[groupPrefix:])
			if err != nil {
				return err
			}
			if err := in.handle(group, m); err != nil {
				if in.t.ctx.Err() != nil {
					return nil
				}
				in.t.cfg.Logger.Debug("transport handler dropped message", "from", in.pre.from, "lane", in.pre.lane.String(), "group", group, "type", m.GetType().String(), "err", err)
			}
		case frameSnapBegin:
			if err := in.snapshot(n, sum); err != nil {
				return err
			}
		default:
			return badFrame("frame %d: unexpected %s frame", in.fr.count, kind)
		}
	}
}

func (in *inboundConn) handle(group uint64, m *raftpb.Message) error {
	if in.t.cfg.Trace != nil {
		now := time.Now()
		in.t.cfg.Trace(TraceEvent{Received: true, Peer: in.pre.from, Lane: in.pre.lane, Group: group, Msg: m, Start: now, End: now})
	}
	return in.t.cfg.Handler(in.t.ctx, group, m)
}

// decode unmarshals a message and checks that it is between the two nodes
// the preamble named.
func (in *inboundConn) decode(p []byte) (*raftpb.Message, error) {
	m := &raftpb.Message{}
	if err := proto.Unmarshal(p, m); err != nil {
		return nil, fmt.Errorf("%w: frame %d: decode raft message: %w", ErrBadFrame, in.fr.count, err)
	}
	if m.GetFrom() != in.pre.from || m.GetTo() != in.t.cfg.ID {
		return nil, badFrame("frame %d: %s from %d to %d on a connection from %d to %d",
			in.fr.count, m.GetType(), m.GetFrom(), m.GetTo(), in.pre.from, in.t.cfg.ID)
	}
	return m, nil
}

// snapshot reassembles a streamed MsgSnap into one buffer of the announced
// size, hands it to the handler and tells the sender the outcome.
func (in *inboundConn) snapshot(n int, sum uint32) error {
	p, err := in.fr.payload(frameSnapBegin, n, sum)
	if err != nil {
		return err
	}
	if len(p) < snapBeginPrefix {
		return badFrame("frame %d: snapshot-begin frame of %d bytes is too short", in.fr.count, len(p))
	}
	total := binary.BigEndian.Uint64(p)
	group := binary.BigEndian.Uint64(p[8:])
	if total > uint64(in.t.cfg.MaxSnapshotBytes) {
		return badFrame("frame %d: snapshot of %d bytes is over this node's %d-byte limit", in.fr.count, total, in.t.cfg.MaxSnapshotBytes)
	}
	m, err := in.decode(p[snapBeginPrefix:])
	if err != nil {
		return err
	}
	if m.GetType() != raftpb.MessageType_MsgSnap {
		return badFrame("frame %d: snapshot-begin frame carries %s", in.fr.count, m.GetType())
	}
	// The buffer grows with the bytes that actually arrive, so a peer that
	// announces a large snapshot and sends little costs little memory.
	var data []byte
	for off := uint64(0); off < total; {
		kind, n, sum, err := in.header(in.t.cfg.FrameTimeout)
		if err != nil {
			return fmt.Errorf("snapshot cut off after %d of %d bytes: %w", off, total, unexpectedEOF(err))
		}
		if kind != frameSnapChunk {
			return badFrame("frame %d: %s frame inside a snapshot (%d of %d bytes received)", in.fr.count, kind, off, total)
		}
		if uint64(n) > total-off {
			return badFrame("frame %d: snapshot chunk of %d bytes overruns the announced %d bytes (%d received)", in.fr.count, n, total, off)
		}
		if data, err = in.fr.appendPayload(data, kind, n, sum); err != nil {
			return fmt.Errorf("snapshot cut off after %d of %d bytes: %w", off, total, err)
		}
		off += uint64(n)
	}
	if m.Snapshot == nil {
		m.Snapshot = &raftpb.Snapshot{}
	}
	m.Snapshot.Data = data

	status := statusPayload(statusSnapshotApplied, "")
	if err := in.handle(group, m); err != nil {
		if in.t.ctx.Err() != nil {
			return nil
		}
		status = statusPayload(statusSnapshotRejected, err.Error())
	}
	_ = in.conn.SetWriteDeadline(time.Now().Add(in.t.cfg.WriteTimeout))
	if _, err := in.conn.Write(encodeFrame(frameStatus, status)); err != nil {
		return fmt.Errorf("write snapshot status: %w", err)
	}
	return nil
}
