package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// inboundReadBuffer is the read buffer of an accepted connection: large
// enough that a stream of small messages costs few syscalls.
const inboundReadBuffer = 64 << 10

// snapshotInitialBuffer is the most a snapshot's buffer starts with before
// its data arrives.
const snapshotInitialBuffer = 8 << 20

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
		t.inbound[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.serve(c)
	}
}

// serve reads one inbound connection until it ends. A connection that breaks
// the protocol is told why before it is closed, so the sender's error says it.
func (t *TCP) serve(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
		_ = c.Close()
	}()
	err := t.receive(c)
	if err == nil || t.ctx.Err() != nil {
		return
	}
	t.cfg.Logger.Warn("transport closing inbound connection", "remote", c.RemoteAddr().String(), "err", err)
	if !errors.Is(err, ErrBadFrame) {
		return
	}
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
	_, _ = io.Copy(io.Discard, c)
}

// receive reads the preamble and then frames, handing each message to the
// handler. It returns nil when the sender closed the connection between
// messages.
func (t *TCP) receive(c net.Conn) error {
	_ = c.SetReadDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	br := bufio.NewReaderSize(c, inboundReadBuffer)
	pre, err := readPreamble(br)
	if err != nil {
		return fmt.Errorf("connection from %s: %w", c.RemoteAddr(), err)
	}
	if pre.to != t.cfg.ID {
		return fmt.Errorf("connection from node %d (%s): %w", pre.from, c.RemoteAddr(),
			badFrame("it is meant for node %d, this is node %d", pre.to, t.cfg.ID))
	}
	_ = c.SetReadDeadline(time.Time{})
	in := inboundConn{t: t, conn: c, pre: pre, fr: frameReader{r: br, limit: t.cfg.MaxFrameBytes}}
	if err := in.loop(); err != nil {
		return fmt.Errorf("connection from node %d lane %s (%s): %w", pre.from, pre.lane, c.RemoteAddr(), err)
	}
	return nil
}

// inboundConn is the receiving side of one (peer, lane) connection.
type inboundConn struct {
	t    *TCP
	conn net.Conn
	pre  preamble
	fr   frameReader
}

func (in *inboundConn) loop() error {
	for {
		kind, n, sum, err := in.fr.header()
		if errors.Is(err, io.EOF) {
			return nil
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
	// The buffer grows with the chunks that actually arrive, so a peer that
	// announces a large snapshot and sends little costs little memory.
	data := make([]byte, 0, min(total, snapshotInitialBuffer))
	for off := uint64(0); off < total; {
		kind, n, sum, err := in.fr.header()
		if err != nil {
			return fmt.Errorf("snapshot cut off after %d of %d bytes: %w", off, total, unexpectedEOF(err))
		}
		if kind != frameSnapChunk {
			return badFrame("frame %d: %s frame inside a snapshot (%d of %d bytes received)", in.fr.count, kind, off, total)
		}
		if uint64(n) > total-off {
			return badFrame("frame %d: snapshot chunk of %d bytes overruns the announced %d bytes (%d received)", in.fr.count, n, total, off)
		}
		data = slices.Grow(data, n)[:off+uint64(n)]
		if err := in.fr.payloadInto(kind, data[off:], sum); err != nil {
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
