package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/lanes"
)

// inbox collects what a transport's handler receives.
type inbox struct {
	ch     chan received
	reject func(*raftpb.Message) error
}

// received is one message a handler got, with its raft group.
type received struct {
	group uint64
	m     *raftpb.Message
}

func newInbox() *inbox { return &inbox{ch: make(chan received, 1024)} }

func (b *inbox) handle(ctx context.Context, group uint64, m *raftpb.Message) error {
	if b.reject != nil {
		if err := b.reject(m); err != nil {
			return err
		}
	}
	select {
	case b.ch <- received{group, m}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *inbox) next(t *testing.T) *raftpb.Message {
	t.Helper()
	return b.nextReceived(t).m
}

func (b *inbox) nextReceived(t *testing.T) received {
	t.Helper()
	select {
	case r := <-b.ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no message arrived within 20s")
		return received{}
	}
}

func (b *inbox) empty(t *testing.T) {
	t.Helper()
	select {
	case r := <-b.ch:
		t.Fatalf("handler got %s from %d, want nothing", r.m.GetType(), r.m.GetFrom())
	default:
	}
}

// startTransport starts a transport on a free loopback port and closes it
// when the test ends.
func startTransport(t *testing.T, cfg Config) *TCP {
	t.Helper()
	if cfg.Listen == "" && cfg.Listener == nil {
		cfg.Listen = "127.0.0.1:0"
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// senderPeer is what a receiving transport knows of node 1, the sender in
// these tests: only that it is a member (the receiver never dials it).
var senderPeer = map[uint64]string{1: "127.0.0.1:1"}

// transportPair starts node 1 (sender) and node 2 (receiver) and returns them.
func transportPair(t *testing.T, sender, receiver Config) (*TCP, *TCP, *inbox) {
	t.Helper()
	in := newInbox()
	receiver.ID = 2
	if receiver.Peers == nil {
		receiver.Peers = senderPeer
	}
	if receiver.Handler == nil {
		receiver.Handler = in.handle
	}
	rx := startTransport(t, receiver)
	sender.ID = 1
	sender.Peers = map[uint64]string{2: rx.Addr().String()}
	if sender.Handler == nil {
		sender.Handler = newInbox().handle
	}
	tx := startTransport(t, sender)
	return tx, rx, in
}

func raftMsg(typ raftpb.MessageType, from, to uint64) *raftpb.Message {
	return &raftpb.Message{Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(7)}
}

func snapshotMsg(from, to uint64, size int, seed uint64) *raftpb.Message {
	data := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(data)
	m := raftMsg(raftpb.MessageType_MsgSnap, from, to)
	m.Snapshot = &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(1000),
			Term:      proto.Uint64(6),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
	return m
}

func TestTransportRoundTrip(t *testing.T) {
	app := raftMsg(raftpb.MessageType_MsgApp, 1, 2)
	app.Index, app.LogTerm, app.Commit = proto.Uint64(41), proto.Uint64(7), proto.Uint64(40)
	app.Entries = []*raftpb.Entry{
		{Term: proto.Uint64(7), Index: proto.Uint64(42), Data: []byte("k=v")},
		{Term: proto.Uint64(7), Index: proto.Uint64(43), Type: raftpb.EntryType_EntryConfChange.Enum()},
	}
	resp := raftMsg(raftpb.MessageType_MsgAppResp, 1, 2)
	resp.Reject, resp.RejectHint = proto.Bool(true), proto.Uint64(12)
	hb := raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2)
	hb.Commit, hb.Context = proto.Uint64(40), []byte("read-ctx")
	emptySnap := raftMsg(raftpb.MessageType_MsgSnap, 1, 2)
	emptySnap.Snapshot = &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(3)}}

	tests := []struct {
		name  string
		lane  lanes.Lane
		m     *raftpb.Message
		chunk int
	}{
		{"heartbeat", lanes.LaneHeartbeat, hb, 0},
		{"append with entries", lanes.LaneReplication, app, 0},
		{"append response", lanes.LaneReplication, resp, 0},
		{"vote", lanes.LaneHeartbeat, raftMsg(raftpb.MessageType_MsgVote, 1, 2), 0},
		{"proposal on legacy normal lane", lanes.LaneNormal, raftMsg(raftpb.MessageType_MsgProp, 1, 2), 0},
		{"snapshot without data", lanes.LaneSnapshot, emptySnap, 0},
		{"small snapshot, one chunk", lanes.LaneSnapshot, snapshotMsg(1, 2, 1000, 1), 0},
		{"snapshot not a multiple of the chunk", lanes.LaneSnapshot, snapshotMsg(1, 2, 10_000, 2), 4096},
		{"64 MiB snapshot in 1 MiB chunks", lanes.LaneSnapshot, snapshotMsg(1, 2, 64<<20, 3), 1 << 20},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx, _, in := transportPair(t, Config{ChunkSize: tc.chunk}, Config{})
			// Every case travels in its own raft group, so a group lost or
			// mixed up in the message or snapshot-begin frame shows.
			group := uint64(i)<<32 | 7
			if err := tx.Send(t.Context(), tc.lane, group, tc.m); err != nil {
				t.Fatalf("Send: %v", err)
			}
			r := in.nextReceived(t)
			if r.group != group {
				t.Errorf("got group %d, want %d", r.group, group)
			}
			got := r.m
			if !proto.Equal(got, tc.m) {
				t.Errorf("got %s (%d snapshot bytes), want %s (%d snapshot bytes), equal data: %v",
					got.GetType(), len(got.GetSnapshot().GetData()), tc.m.GetType(), len(tc.m.GetSnapshot().GetData()),
					string(got.GetSnapshot().GetData()) == string(tc.m.GetSnapshot().GetData()))
			}
		})
	}
}

func TestWithoutSnapshotDataKeepsEveryOtherField(t *testing.T) {
	m := snapshotMsg(1, 2, 100, 4)
	m.Index, m.LogTerm, m.Commit, m.Vote = proto.Uint64(1), proto.Uint64(2), proto.Uint64(3), proto.Uint64(4)
	m.Reject, m.RejectHint, m.Context = proto.Bool(true), proto.Uint64(5), []byte("ctx")
	m.Entries = []*raftpb.Entry{{Index: proto.Uint64(9)}}
	before := proto.Clone(m)

	got := withoutSnapshotData(m)

	if len(got.GetSnapshot().GetData()) != 0 {
		t.Errorf("got %d data bytes, want none", len(got.GetSnapshot().GetData()))
	}
	got.Snapshot.Data = m.GetSnapshot().GetData()
	if !proto.Equal(got, m) {
		t.Errorf("got %v, want %v apart from the data", got, m)
	}
	if !proto.Equal(m, before) {
		t.Error("the original message was modified")
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

type dialKey struct {
	peer uint64
	lane lanes.Lane
}

// dialCounter is a DialFunc that counts dials per (peer, lane).
type dialCounter struct {
	mu    sync.Mutex
	dials map[dialKey]int
}

func (d *dialCounter) dial(ctx context.Context, peer uint64, lane lanes.Lane, addr string) (net.Conn, error) {
	d.mu.Lock()
	if d.dials == nil {
		d.dials = make(map[dialKey]int)
	}
	d.dials[dialKey{peer, lane}]++
	d.mu.Unlock()
	var nd net.Dialer
	return nd.DialContext(ctx, "tcp", addr)
}

func (d *dialCounter) count(peer uint64, lane lanes.Lane) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials[dialKey{peer, lane}]
}

func TestTransportOneConnectionPerPeerAndLane(t *testing.T) {
	const perLane = 50
	allLanes := []lanes.Lane{lanes.LaneHeartbeat, lanes.LaneReplication, lanes.LaneSnapshot, lanes.LaneOther, lanes.LaneNormal}
	type receiver struct {
		ln *countingListener
		in *inbox
	}
	peers := map[uint64]string{}
	receivers := map[uint64]receiver{}
	for _, id := range []uint64{2, 3} {
		raw, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		r := receiver{ln: &countingListener{Listener: raw}, in: newInbox()}
		startTransport(t, Config{ID: id, Listener: r.ln, Handler: r.in.handle, Peers: senderPeer})
		receivers[id] = r
		peers[id] = raw.Addr().String()
	}
	var dc dialCounter
	tx := startTransport(t, Config{ID: 1, Peers: peers, Handler: newInbox().handle, Dial: dc.dial})

	// Every (peer, lane) sends from its own goroutine, as the dispatcher's
	// lane workers do.
	var wg sync.WaitGroup
	errs := make(chan error, len(peers)*len(allLanes)*perLane)
	for to := range peers {
		for _, lane := range allLanes {
			wg.Go(func() {
				for i := range perLane {
					m := raftMsg(raftpb.MessageType_MsgApp, 1, to)
					m.Index = proto.Uint64(uint64(i))
					if err := tx.Send(t.Context(), lane, 0, m); err != nil {
						errs <- err
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Send: %v", err)
	}
	for id, r := range receivers {
		for range perLane * len(allLanes) {
			r.in.next(t)
		}
		if got, want := r.ln.accepted.Load(), int64(len(allLanes)); got != want {
			t.Errorf("node %d accepted %d connections, want %d (one per lane)", id, got, want)
		}
		for _, lane := range allLanes {
			if got := dc.count(id, lane); got != 1 {
				t.Errorf("peer %d lane %s dialled %d times, want 1", id, lane, got)
			}
		}
	}
}

// rawTransportConn opens a plain TCP connection to tr for feeding it hand-made bytes.
func rawTransportConn(t *testing.T, tr *TCP) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", tr.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// readRejection reads the status frame a transport sends before closing a
// connection it refuses, and returns its reason.
func readRejection(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fr := frameReader{r: bufio.NewReader(c), limit: 4096}
	kind, n, sum, err := fr.header()
	if err != nil {
		t.Fatalf("read status frame: %v", err)
	}
	if kind != frameStatus {
		t.Fatalf("got a %s frame, want status", kind)
	}
	p, err := fr.payload(kind, n, sum)
	if err != nil {
		t.Fatalf("read status payload: %v", err)
	}
	if statusCode(p[0]) != statusConnRejected {
		t.Fatalf("got status %d, want %d (connection rejected)", p[0], statusConnRejected)
	}
	return string(p[1:])
}

func marshalMsg(t *testing.T, m *raftpb.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

func TestTransportRejectsBadInput(t *testing.T) {
	good := preamble{version: wireVersion, lane: lanes.LaneReplication, from: 1, to: 2}.marshal()
	hb := marshalMsg(t, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2))
	msgFrame := func(group uint64, m []byte) []byte {
		return encodeFrame(frameMessage, append(binary.BigEndian.AppendUint64(nil, group), m...))
	}
	corrupt := msgFrame(0, hb)
	corrupt[len(corrupt)-1] ^= 0xff
	oversized := make([]byte, frameHeaderLen)
	putFrameHeader(oversized, frameMessage, nil)
	oversized[1], oversized[2] = 0x10, 0 // announce 256 MiB
	snapBegin := func(total uint64, m *raftpb.Message) []byte {
		p := binary.BigEndian.AppendUint64(nil, total)
		p = binary.BigEndian.AppendUint64(p, 3)
		return encodeFrame(frameSnapBegin, append(p, marshalMsg(t, m)...))
	}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"not our protocol", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), `preamble starts with "GET "`},
		{"newer version", preamble{version: 9, lane: lanes.LaneHeartbeat, from: 1, to: 2}.marshal(), fmt.Sprintf("protocol version 9, this node speaks version %d", wireVersion)},
		{"unknown lane", preamble{version: wireVersion, lane: lanes.Lane(77), from: 1, to: 2}.marshal(), "lane 77, which does not exist"},
		{"sender id zero", preamble{version: wireVersion, lane: lanes.LaneHeartbeat, from: 0, to: 2}.marshal(), "sender id 0"},
		{"meant for another node", preamble{version: wireVersion, lane: lanes.LaneHeartbeat, from: 1, to: 3}.marshal(), "meant for node 3, this is node 2"},
		{"corrupt payload", join(good, corrupt), "checksum"},
		{"oversized frame", join(good, oversized), "over the 1048576-byte limit"},
		{"unknown frame kind", join(good, encodeFrame(frameKind(42), hb)), "unknown kind 42"},
		{"message frame without its group", join(good, encodeFrame(frameMessage, []byte{0, 0, 1})), "message frame of 3 bytes is too short"},
		{"garbage instead of a message", join(good, msgFrame(1, []byte{0xff, 0xff, 0xff})), "decode raft message"},
		{"message from a different sender", join(good, msgFrame(0, marshalMsg(t, raftMsg(raftpb.MessageType_MsgHeartbeat, 5, 2)))), "from 5 to 2 on a connection from 1 to 2"},
		{"snapshot-begin without its group", join(good, encodeFrame(frameSnapBegin, binary.BigEndian.AppendUint64(nil, 4))), "snapshot-begin frame of 8 bytes is too short"},
		{"chunk without a snapshot", join(good, encodeFrame(frameSnapChunk, []byte("data"))), "unexpected snapshot-chunk frame"},
		{"status frame from the dialer", join(good, encodeFrame(frameStatus, []byte{0})), "unexpected status frame"},
		{"snapshot over the limit", join(good, snapBegin(8<<20, raftMsg(raftpb.MessageType_MsgSnap, 1, 2))), "snapshot of 8388608 bytes is over this node's 4194304-byte limit"},
		{"snapshot-begin carrying an append", join(good, snapBegin(10, raftMsg(raftpb.MessageType_MsgApp, 1, 2))), "snapshot-begin frame carries MsgApp"},
		{"chunk overrunning the snapshot", join(good, snapBegin(4, raftMsg(raftpb.MessageType_MsgSnap, 1, 2)), encodeFrame(frameSnapChunk, []byte("12345"))), "overruns the announced 4 bytes"},
		{"message inside a snapshot", join(good, snapBegin(4, raftMsg(raftpb.MessageType_MsgSnap, 1, 2)), msgFrame(0, hb)), "message frame inside a snapshot (0 of 4 bytes received)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInbox()
			rx := startTransport(t, Config{ID: 2, Handler: in.handle, MaxFrameBytes: 1 << 20, MaxSnapshotBytes: 4 << 20, Peers: senderPeer})
			c := rawTransportConn(t, rx)
			if _, err := c.Write(tc.input); err != nil {
				t.Fatalf("write: %v", err)
			}
			if got := readRejection(t, c); !strings.Contains(got, tc.want) {
				t.Errorf("got reason %q, want it to contain %q", got, tc.want)
			}
			in.empty(t)
		})
	}
}

func TestTransportSenderSeesRejectionReason(t *testing.T) {
	// Node 1 believes node 3 lives at node 2's address.
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer})
	var dc dialCounter
	tx := startTransport(t, Config{ID: 1, Handler: newInbox().handle, Peers: map[uint64]string{3: rx.Addr().String()},
		Dial: dc.dial, MinBackoff: time.Minute, MaxBackoff: time.Minute})
	send := func() error {
		return tx.Send(t.Context(), lanes.LaneHeartbeat, 0, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 3))
	}
	var err error
	for range 100 {
		if err = send(); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.Is(err, ErrPeerRejected) || !strings.Contains(err.Error(), "meant for node 3, this is node 2") {
		t.Fatalf("got %v, want ErrPeerRejected naming the wrong node", err)
	}
	// A peer that refuses us is not redialled in a loop.
	for range 5 {
		if err := send(); !errors.Is(err, ErrPeerUnreachable) || !strings.Contains(err.Error(), "next dial in") {
			t.Errorf("send during backoff: got %v, want ErrPeerUnreachable waiting for the next dial", err)
		}
	}
	if got := dc.count(3, lanes.LaneHeartbeat); got != 1 {
		t.Errorf("dialled %d times, want 1", got)
	}
	in.empty(t)
}

func TestTransportReconnectsAfterPeerRestart(t *testing.T) {
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer})
	addr := rx.Addr().String()
	var dc dialCounter
	tx := startTransport(t, Config{ID: 1, Handler: newInbox().handle, Peers: map[uint64]string{2: addr},
		Dial: dc.dial, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	send := func() error {
		return tx.Send(t.Context(), lanes.LaneHeartbeat, 0, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2))
	}
	if err := send(); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	in.next(t)

	if err := rx.Close(); err != nil {
		t.Fatalf("Close receiver: %v", err)
	}
	// The sender notices the closed connection by itself; the next send
	// fails instead of vanishing into a dead socket.
	var err error
	for range 200 {
		if err = send(); err != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !errors.Is(err, ErrPeerUnreachable) && !errors.Is(err, ErrConnLost) {
		t.Fatalf("Send to a stopped peer: got %v, want ErrPeerUnreachable or ErrConnLost", err)
	}

	in2 := newInbox()
	startTransport(t, Config{ID: 2, Listen: addr, Handler: in2.handle, Peers: senderPeer})
	for i := 0; ; i++ {
		if err = send(); err == nil {
			break
		}
		if i == 500 {
			t.Fatalf("Send after the peer restarted: still failing after 500 tries: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := in2.next(t).GetType(); got != raftpb.MessageType_MsgHeartbeat {
		t.Errorf("restarted peer got %s, want MsgHeartbeat", got)
	}
	if got := dc.count(2, lanes.LaneHeartbeat); got < 2 {
		t.Errorf("dialled %d times, want at least 2 (a reconnect)", got)
	}
}

func TestTransportBacksOffAfterFailedDial(t *testing.T) {
	// A port with nothing listening: grab one and close it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	var dc dialCounter
	tx := startTransport(t, Config{ID: 1, Handler: newInbox().handle, Peers: map[uint64]string{2: addr},
		Dial: dc.dial, MinBackoff: time.Minute, MaxBackoff: time.Minute})

	for i, want := range []string{"dial " + addr, "next dial in"} {
		err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2))
		if !errors.Is(err, ErrPeerUnreachable) || !strings.Contains(err.Error(), want) {
			t.Errorf("send %d: got %v, want ErrPeerUnreachable containing %q", i+1, err, want)
		}
	}
	if got := dc.count(2, lanes.LaneHeartbeat); got != 1 {
		t.Errorf("dialled %d times, want 1 (the second send waits out the backoff)", got)
	}
	// Backoff is per lane: another lane dials on its own.
	_ = tx.Send(t.Context(), lanes.LaneReplication, 0, raftMsg(raftpb.MessageType_MsgApp, 1, 2))
	if got := dc.count(2, lanes.LaneReplication); got != 1 {
		t.Errorf("replication lane dialled %d times, want 1", got)
	}
}

// cutListener hands out connections that break after reading limit bytes,
// as if the receiving node died mid-transfer.
type cutListener struct {
	net.Listener
	limit int64
}

func (l *cutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: c, left: l.limit}, nil
}

type cutConn struct {
	net.Conn
	left int64
}

func (c *cutConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		_ = c.Conn.Close()
		return 0, fmt.Errorf("test link cut")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

func TestTransportSnapshotFailures(t *testing.T) {
	tests := []struct {
		name     string
		receiver func(*Config, *inbox)
		ctx      func(context.Context) (context.Context, context.CancelFunc)
		want     error
		wantText string
	}{
		{
			name: "connection breaks mid-snapshot",
			receiver: func(c *Config, _ *inbox) {
				raw, _ := net.Listen("tcp", "127.0.0.1:0")
				c.Listener = &cutListener{Listener: raw, limit: 8 << 20}
			},
			want: ErrConnLost,
		},
		{
			name:     "snapshot over the receiver's limit",
			receiver: func(c *Config, _ *inbox) { c.MaxSnapshotBytes = 1 << 20 },
			want:     ErrPeerRejected,
			wantText: "over this node's 1048576-byte limit",
		},
		{
			name: "handler refuses the snapshot",
			receiver: func(_ *Config, in *inbox) {
				in.reject = func(*raftpb.Message) error { return errors.New("snapshot index behind the log") }
			},
			want:     ErrSnapshotRejected,
			wantText: "snapshot index behind the log",
		},
		{
			name: "context cancelled mid-snapshot",
			receiver: func(c *Config, in *inbox) {
				// The receiver stops reading, so the sender is stuck in
				// a write when the deadline passes.
				in.reject = func(*raftpb.Message) error { return nil }
				raw, _ := net.Listen("tcp", "127.0.0.1:0")
				c.Listener = &stallListener{Listener: raw}
			},
			ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, 200*time.Millisecond)
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newInbox()
			rcfg := Config{Handler: in.handle}
			tc.receiver(&rcfg, in)
			tx, _, _ := transportPair(t, Config{ChunkSize: 256 << 10}, rcfg)
			ctx := t.Context()
			if tc.ctx != nil {
				var cancel context.CancelFunc
				ctx, cancel = tc.ctx(ctx)
				defer cancel()
			}
			err := tx.Send(ctx, lanes.LaneSnapshot, 0, snapshotMsg(1, 2, 32<<20, 5))
			if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.wantText) {
				t.Fatalf("got %v, want %v containing %q", err, tc.want, tc.wantText)
			}
			in.empty(t)
			// The lane recovers: the next message goes through on a
			// fresh or the same connection.
			if tc.name == "handler refuses the snapshot" {
				in.reject = nil
				if err := tx.Send(t.Context(), lanes.LaneSnapshot, 0, snapshotMsg(1, 2, 1000, 6)); err != nil {
					t.Fatalf("Send after a rejected snapshot: %v", err)
				}
				in.next(t)
			}
		})
	}
}

// stallListener hands out connections that are never read after the
// preamble: the receiver's socket buffers fill and the sender blocks.
type stallListener struct{ net.Listener }

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c}, nil
}

type stallConn struct {
	net.Conn
	read int
}

func (c *stallConn) Read(p []byte) (int, error) {
	if c.read >= preambleLen {
		// Block until the transport closes the connection.
		buf := make([]byte, 1)
		for {
			if _, err := c.Conn.Read(buf); err != nil {
				return 0, err
			}
		}
	}
	p = p[:min(len(p), preambleLen-c.read)]
	n, err := c.Conn.Read(p)
	c.read += n
	return n, err
}

func TestTransportPeerLifecycleErrors(t *testing.T) {
	tx, rx, in := transportPair(t, Config{}, Config{})
	hb := func(to uint64) *raftpb.Message { return raftMsg(raftpb.MessageType_MsgHeartbeat, 1, to) }

	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, hb(9)); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("send to unknown peer: got %v, want ErrUnknownPeer", err)
	}
	if err := tx.Send(t.Context(), lanes.Lane(200), 0, hb(2)); err == nil || !strings.Contains(err.Error(), "lane 200 does not exist") {
		t.Errorf("send on a bad lane: got %v, want lane error", err)
	}
	for _, bad := range []struct {
		id   uint64
		addr string
		want string
	}{
		{0, "127.0.0.1:1", "want a non-zero id and an address"},
		{4, "", "want a non-zero id and an address"},
		{1, "127.0.0.1:1", "this node's own id"},
	} {
		if err := tx.AddPeer(bad.id, bad.addr); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("AddPeer(%d, %q): got %v, want an error containing %q", bad.id, bad.addr, err, bad.want)
		}
	}
	if err := tx.AddPeer(9, rx.Addr().String()); err != nil {
		t.Fatalf("AddPeer: %v", err)
	}
	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, hb(2)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	in.next(t)
	tx.RemovePeer(2)
	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, hb(2)); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("send to removed peer: got %v, want ErrUnknownPeer", err)
	}
	if err := tx.AddPeer(2, rx.Addr().String()); err != nil {
		t.Fatalf("AddPeer: %v", err)
	}
	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, hb(2)); err != nil {
		t.Fatalf("Send after re-adding the peer: %v", err)
	}
	in.next(t)
	if err := tx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, hb(2)); !errors.Is(err, ErrTransportClosed) {
		t.Errorf("send after Close: got %v, want ErrTransportClosed", err)
	}
	if err := tx.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := tx.AddPeer(5, "127.0.0.1:1"); !errors.Is(err, ErrTransportClosed) {
		t.Errorf("AddPeer after Close: got %v, want ErrTransportClosed", err)
	}
}

func TestTransportCloseInterruptsBlockedWork(t *testing.T) {
	// The receiver's handler blocks until its context ends, and a snapshot
	// is stuck mid-write to a stalled peer: Close must end both.
	block := func(ctx context.Context, _ uint64, _ *raftpb.Message) error { <-ctx.Done(); return ctx.Err() }
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	stalled := startTransport(t, Config{ID: 3, Listener: &stallListener{Listener: raw}, Handler: block, Peers: senderPeer})
	tx, _, _ := transportPair(t, Config{}, Config{Handler: block})
	if err := tx.AddPeer(3, stalled.Addr().String()); err != nil {
		t.Fatalf("AddPeer: %v", err)
	}
	if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- tx.Send(t.Context(), lanes.LaneSnapshot, 0, snapshotMsg(1, 3, 32<<20, 7)) }()
	time.Sleep(100 * time.Millisecond) // let the snapshot fill the socket buffers
	if err := tx.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrTransportClosed) {
			t.Errorf("interrupted snapshot: got %v, want ErrTransportClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("snapshot send still blocked 10s after Close")
	}
}

func TestTransportConfigErrors(t *testing.T) {
	h := newInbox().handle
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no id", Config{Listen: "127.0.0.1:0", Handler: h}, "ID must be a non-zero raft id"},
		{"no handler", Config{ID: 1, Listen: "127.0.0.1:0"}, "Handler is required"},
		{"no address", Config{ID: 1, Handler: h}, "Listen or Listener is required"},
		{"negative chunk", Config{ID: 1, Listen: "127.0.0.1:0", Handler: h, ChunkSize: -1}, "ChunkSize is -1"},
		{"chunk over frame limit", Config{ID: 1, Listen: "127.0.0.1:0", Handler: h, ChunkSize: 4 << 20, MaxFrameBytes: 1 << 20}, "ChunkSize 4194304 is larger than MaxFrameBytes 1048576"},
		{"backoff inverted", Config{ID: 1, Listen: "127.0.0.1:0", Handler: h, MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff 1ms is below MinBackoff 1s"},
		{"peer without address", Config{ID: 1, Listen: "127.0.0.1:0", Handler: h, Peers: map[uint64]string{2: ""}}, `peer 2="": want a non-zero id and an address`},
		{"itself as a peer", Config{ID: 1, Listen: "127.0.0.1:0", Handler: h, Peers: map[uint64]string{1: "127.0.0.1:1"}}, `peer 1="127.0.0.1:1" is this node's own id`},
		{"bad listen address", Config{ID: 1, Listen: "127.0.0.1:99999", Handler: h}, "transport listen on 127.0.0.1:99999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := New(tc.cfg)
			if err == nil {
				_ = tr.Close()
				t.Fatalf("got no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTransportTraceSeesBothEnds(t *testing.T) {
	var mu sync.Mutex
	var events []TraceEvent
	trace := func(ev TraceEvent) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}
	tx, _, in := transportPair(t, Config{Trace: trace}, Config{Trace: trace})
	if err := tx.Send(t.Context(), lanes.LaneReplication, 0, raftMsg(raftpb.MessageType_MsgApp, 1, 2)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	in.next(t)
	_ = tx.Send(t.Context(), lanes.LaneOther, 0, raftMsg(raftpb.MessageType_MsgProp, 1, 9))

	mu.Lock()
	defer mu.Unlock()
	type seen struct {
		received bool
		peer     uint64
		lane     lanes.Lane
		typ      raftpb.MessageType
		failed   bool
	}
	var got []seen
	for _, ev := range events {
		got = append(got, seen{ev.Received, ev.Peer, ev.Lane, ev.Msg.GetType(), ev.Err != nil})
		if ev.End.Before(ev.Start) {
			t.Errorf("event %+v ends before it starts", ev)
		}
	}
	want := []seen{
		{false, 2, lanes.LaneReplication, raftpb.MessageType_MsgApp, false},
		{true, 1, lanes.LaneReplication, raftpb.MessageType_MsgApp, false},
		{false, 9, lanes.LaneOther, raftpb.MessageType_MsgProp, true},
	}
	// The receiver's event may be recorded before or after the sender's.
	if len(got) == 3 && got[0].received {
		got[0], got[1] = got[1], got[0]
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got events %+v, want %+v", got, want)
	}
}
