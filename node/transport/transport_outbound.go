package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/lanectl/lanectl/lanes"
)

// outConn is the sending side of one (peer, lane): the current connection,
// if any, and the reconnect backoff.
type outConn struct {
	t    *TCP
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

func (oc *outConn) send(ctx context.Context, group uint64, m *raftpb.Message) error {
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
		return oc.writeSnapshot(s, group, m)
	}
	return oc.writeMessage(s, group, m)
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
	if t.cfg.TLS != nil {
		tc := tls.Client(conn, t.clientTLS(oc.peer))
		if err := tc.HandshakeContext(dctx); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", oc.addr, err)
		}
		conn = tc
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

func (oc *outConn) writeMessage(s *session, group uint64, m *raftpb.Message) error {
	var header [frameHeaderLen]byte
	buf := binary.BigEndian.AppendUint64(append(oc.buf[:0], header[:]...), group)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
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
func (oc *outConn) writeSnapshot(s *session, group uint64, m *raftpb.Message) error {
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
	binary.BigEndian.PutUint64(begin[8:], group)
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
