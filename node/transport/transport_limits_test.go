package transport

import (
	"bufio"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
)

// openPreamble opens a raw connection to tr and sends a valid preamble from
// node from on lane.
func openPreamble(t *testing.T, tr *TCP, from uint64, lane lanes.Lane) net.Conn {
	t.Helper()
	c := rawTransportConn(t, tr)
	if _, err := c.Write(preamble{version: wireVersion, lane: lane, from: from, to: 2}.marshal()); err != nil {
		t.Fatalf("write preamble: %v", err)
	}
	return c
}

func heartbeatFrame(t *testing.T, from uint64) []byte {
	t.Helper()
	return encodeFrame(frameMessage, append(make([]byte, groupPrefix), marshalMsg(t, raftMsg(raftpb.MessageType_MsgHeartbeat, from, 2))...))
}

func TestTransportCapsPendingHandshakes(t *testing.T) {
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer, MaxPendingConns: 4, HandshakeTimeout: 4 * time.Second})
	silent := make([]net.Conn, 4)
	for i := range silent {
		silent[i] = rawTransportConn(t, rx)
	}
	// The cap counts connections as they are accepted; wait until all four
	// are in before the next one must be turned away.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rx.mu.Lock()
		pending := rx.pending
		rx.mu.Unlock()
		if pending == len(silent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections pending, want %d", pending, len(silent))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Turned away at once, well before the handshake deadline would.
	waitClosed(t, rawTransportConn(t, rx), 2*time.Second)
	// The silent ones are cut off at the handshake deadline.
	for _, c := range silent {
		waitClosed(t, c, 10*time.Second)
	}
	// And then a member gets in again.
	c := openPreamble(t, rx, 1, lanes.LaneHeartbeat)
	if _, err := c.Write(heartbeatFrame(t, 1)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := in.next(t); got.GetType() != raftpb.MessageType_MsgHeartbeat {
		t.Fatalf("got %s, want the heartbeat", got.GetType())
	}
}

func TestTransportOneInboundConnectionPerPeerAndLane(t *testing.T) {
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer})
	var conns []net.Conn
	for range 20 {
		c := openPreamble(t, rx, 1, lanes.LaneHeartbeat)
		// A heartbeat through each proves it was admitted before the next
		// one replaces it.
		if _, err := c.Write(heartbeatFrame(t, 1)); err != nil {
			t.Fatalf("write: %v", err)
		}
		in.next(t)
		conns = append(conns, c)
	}
	for i, c := range conns[:len(conns)-1] {
		t.Logf("waiting for connection %d to be closed", i)
		waitClosed(t, c, 10*time.Second)
	}
	last := conns[len(conns)-1]
	if _, err := last.Write(heartbeatFrame(t, 1)); err != nil {
		t.Fatalf("write on the newest connection: %v", err)
	}
	in.next(t)
	rx.mu.Lock()
	n := len(rx.byLane)
	rx.mu.Unlock()
	if n != 1 {
		t.Errorf("%d authenticated inbound connections, want 1", n)
	}
}

func TestTransportClosesIdleAndStalledConnections(t *testing.T) {
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer,
		IdleTimeout: 300 * time.Millisecond, FrameTimeout: 300 * time.Millisecond})
	idle := openPreamble(t, rx, 1, lanes.LaneHeartbeat)
	waitClosed(t, idle, 10*time.Second)

	stalled := openPreamble(t, rx, 1, lanes.LaneReplication)
	hdr := make([]byte, frameHeaderLen)
	putFrameHeader(hdr, frameMessage, nil)
	binary.BigEndian.PutUint32(hdr[1:5], 1000)
	if _, err := stalled.Write(append(hdr, make([]byte, 10)...)); err != nil {
		t.Fatalf("write: %v", err)
	}
	waitClosed(t, stalled, 10*time.Second)
	in.empty(t)
}

// rssBytes reads one of the VmRSS-style fields of /proc/self/status.
func rssBytes(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("read own memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("parse %s %q: %v", field, rest, err)
		}
		return kb << 10
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestTransportMemoryOfFramesAnnouncedButNotSent plays a member (or anyone
// holding its identity on an insecure cluster) that opens 8 connections,
// two per lane, each announcing a 64 MiB frame and sending most of it. The
// receiver's memory must follow one peer's buffer budget, not the bytes
// announced or sent.
func TestTransportMemoryOfFramesAnnouncedButNotSent(t *testing.T) {
	const (
		conns     = 8
		announced = 64 << 20
		sent      = 48 << 20
		budget    = announced // the default: MaxFrameBytes
		bound     = budget + 16<<20
	)
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer,
		MaxFrameBytes: announced, FrameTimeout: 2 * time.Second})
	part := make([]byte, sent)
	for i := range part {
		part[i] = byte(i)
	}
	runtime.GC()
	debug.FreeOSMemory()
	// Writing 5 to clear_refs resets VmHWM, the peak, to the current RSS.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
	before := rssBytes(t, "VmRSS")

	hdr := make([]byte, frameHeaderLen)
	putFrameHeader(hdr, frameMessage, nil)
	binary.BigEndian.PutUint32(hdr[1:5], announced)
	var wg sync.WaitGroup
	for i := range conns {
		c := openPreamble(t, rx, 1, lanes.Lane(i%lanes.NumLanes))
		wg.Go(func() {
			// The receiver stops reading (budget) and then cuts the
			// connection off (frame deadline), which ends these writes.
			_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
			_, _ = c.Write(hdr)
			_, _ = c.Write(part)
			if err := closedWithin(c, time.Minute); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	peak := rssBytes(t, "VmHWM")
	growth := peak - before
	t.Logf("%d connections announcing %d MiB frames and sending %d MiB each (%d MiB announced, %d MiB sent): RSS %d MiB before, peak %d MiB, growth %d MiB (bound %d MiB: the peer's %d MiB budget + 16 MiB)",
		conns, announced>>20, sent>>20, conns*announced>>20, conns*sent>>20, before>>20, peak>>20, growth>>20, bound>>20, budget>>20)
	switch {
	case raceDetector:
		t.Log("under -race the detector's shadow memory dominates RSS; the bound is checked in runs without it")
	case growth > bound:
		t.Errorf("RSS grew by %d MiB, want at most %d MiB", growth>>20, bound>>20)
	}
	in.empty(t)
}

func TestTransportRemovedPeerIsCutOff(t *testing.T) {
	in := newInbox()
	rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: map[uint64]string{1: "127.0.0.1:1"}})
	c := openPreamble(t, rx, 1, lanes.LaneHeartbeat)
	if _, err := c.Write(heartbeatFrame(t, 1)); err != nil {
		t.Fatalf("write: %v", err)
	}
	in.next(t)
	rx.RemovePeer(1)
	waitClosed(t, c, 10*time.Second)
	again := openPreamble(t, rx, 1, lanes.LaneHeartbeat)
	if got, want := readRejection(t, again), "node 1 is not a member of this cluster"; !strings.Contains(got, want) {
		t.Errorf("got reason %q, want it to contain %q", got, want)
	}
	in.empty(t)
}
