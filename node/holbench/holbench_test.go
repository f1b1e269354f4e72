package holbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// loopbackPair returns both ends of a loopback TCP connection.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	return client, server
}

func TestNewLinkRejectsBadRate(t *testing.T) {
	for _, rate := range []int64{0, -5} {
		if _, err := NewLink(rate, 0); err == nil {
			t.Errorf("NewLink(%d): got no error, want one", rate)
		}
	}
}

func TestLinkDeliversEveryByteInOrder(t *testing.T) {
	link, err := NewLink(64<<20, 1000)
	if err != nil {
		t.Fatal(err)
	}
	client, server := loopbackPair(t)
	c := link.Wrap(client)
	want := make([]byte, 100_003)
	for i := range want {
		want[i] = byte(i * 7)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := c.Write(want)
		if err == nil && n != len(want) {
			err = fmt.Errorf("wrote %d of %d bytes", n, len(want))
		}
		errc <- err
		_ = c.Close()
	}()
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("got %d bytes, want the %d written, in order", len(got), len(want))
	}
}

// TestLinkInterleavesConnections checks, by counting bytes rather than
// timing, the property the benchmark relies on: a small write on one
// connection is not stuck behind a large write on another.
func TestLinkInterleavesConnections(t *testing.T) {
	const chunk = 1 << 10
	link, err := NewLink(256<<10, chunk) // 256 KiB/s: 1 MiB takes ~4s
	if err != nil {
		t.Fatal(err)
	}
	bulkClient, bulkServer := loopbackPair(t)
	smallClient, smallServer := loopbackPair(t)
	bulk, small := link.Wrap(bulkClient), link.Wrap(smallClient)

	var wg sync.WaitGroup
	defer wg.Wait()
	var bulkRead sync.Mutex
	bulkBytes := 0
	wg.Go(func() {
		buf := make([]byte, 4096)
		for {
			n, err := bulkServer.Read(buf)
			bulkRead.Lock()
			bulkBytes += n
			bulkRead.Unlock()
			if err != nil {
				return
			}
		}
	})
	wg.Go(func() { _, _ = bulk.Write(make([]byte, 1<<20)) })

	// Wait until the bulk transfer is under way.
	for i := 0; ; i++ {
		bulkRead.Lock()
		n := bulkBytes
		bulkRead.Unlock()
		if n >= 4*chunk {
			break
		}
		if i == 2000 {
			t.Fatalf("bulk transfer did not start: %d bytes after 10s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := small.Write([]byte("heartbeat")); err != nil {
		t.Fatalf("small write: %v", err)
	}
	buf := make([]byte, 9)
	if _, err := io.ReadFull(smallServer, buf); err != nil {
		t.Fatalf("small read: %v", err)
	}
	bulkRead.Lock()
	n := bulkBytes
	bulkRead.Unlock()
	if n > 256<<10 {
		t.Errorf("small write arrived after %d bulk bytes, want it interleaved well before the 1 MiB finished", n)
	}
	_ = bulk.Close()
}

func TestLinkWriteHonoursDeadlineAndClose(t *testing.T) {
	link, err := NewLink(1<<10, 1<<10) // 1 KiB/s
	if err != nil {
		t.Fatal(err)
	}
	client, _ := loopbackPair(t)
	c := link.Wrap(client)
	if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, 64<<10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("write past the deadline: got %v, want os.ErrDeadlineExceeded", err)
	}
	if err := c.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, 64<<10))
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the write start waiting on the link
	_ = c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("write interrupted by Close: got %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write still blocked 10s after Close")
	}
}

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"empty", nil, Latency{}},
		{"one", ms(7), Latency{Count: 1, P50: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond}},
		{"hundred, unsorted", hundred, Latency{Count: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := summarize(tc.in); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestRunDirectMeasuresBothModes(t *testing.T) {
	// A small, fast version of the scenario: the test checks that the
	// measurement is complete and consistent, not how fast anything is.
	rep, err := RunDirect(t.Context(), Config{
		SnapshotBytes:      4 << 20,
		LinkBytesPerSecond: 16 << 20,
		Warmup:             200 * time.Millisecond,
		Tail:               100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("RunDirect: %v", err)
	}
	for _, res := range []ModeResult{rep.Legacy, rep.FourLane} {
		t.Run(res.Mode, func(t *testing.T) {
			if res.SnapshotTransfer <= 0 {
				t.Errorf("snapshot transfer %v, want > 0", res.SnapshotTransfer)
			}
			for name, tr := range map[string]Traffic{"append": res.Append, "heartbeat": res.Heartbeat} {
				if tr.Delivery.Count == 0 {
					t.Errorf("%s: no deliveries measured during the transfer", name)
				}
				if tr.Delivery.P99 < tr.QueueWait.P50 || tr.Delivery.Max < tr.Delivery.P99 || tr.Delivery.P99 < tr.Delivery.P50 {
					t.Errorf("%s: inconsistent latencies: wait %+v, delivery %+v", name, tr.QueueWait, tr.Delivery)
				}
			}
			if _, ok := res.Dropped["heartbeat"]; !ok {
				t.Errorf("dropped counters %v have no heartbeat lane", res.Dropped)
			}
		})
	}
	if got, want := rep.Legacy.Append.Lane, "normal"; got != want {
		t.Errorf("legacy append lane %q, want %q", got, want)
	}
	if got, want := rep.FourLane.Append.Lane, "replication"; got != want {
		t.Errorf("four-lane append lane %q, want %q", got, want)
	}
	t.Logf("append delivery p99: legacy %v, four-lane %v (%.0fx)", rep.Legacy.Append.Delivery.P99, rep.FourLane.Append.Delivery.P99, rep.AppendP99Ratio())
}

func BenchmarkHeadOfLineDirect(b *testing.B) {
	for b.Loop() {
		rep, err := RunDirect(context.Background(), Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Legacy.Append.Delivery.P99.Microseconds()), "legacy-app-p99-µs")
		b.ReportMetric(float64(rep.FourLane.Append.Delivery.P99.Microseconds()), "fourlane-app-p99-µs")
		b.ReportMetric(rep.AppendP99Ratio(), "app-p99-ratio")
		b.ReportMetric(float64(rep.FourLane.Elections), "fourlane-elections")
	}
}

func TestRunClusterMeasuresBothModes(t *testing.T) {
	// Three real replicas per layout, four raft groups each, with a small
	// forced snapshot of group 0: the test checks the run completes and
	// measures what it claims to, and the order the other groups' appends
	// arrive in relative to the snapshot, not how fast anything is.
	rep, err := RunCluster(t.Context(), Config{
		Groups:             4,
		SnapshotBytes:      4 << 20,
		LinkBytesPerSecond: 16 << 20,
		ElectionTimeout:    3 * time.Second, // a slow CI machine must not lose its leader
		Warmup:             200 * time.Millisecond,
		Tail:               100 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("RunCluster: %v", err)
	}
	if rep.Scenario != "cluster" || len(rep.Notes) == 0 {
		t.Errorf("got scenario %q with %d notes, want cluster with notes", rep.Scenario, len(rep.Notes))
	}
	for _, res := range []ModeResult{rep.Legacy, rep.FourLane} {
		t.Run(res.Mode, func(t *testing.T) {
			if res.SnapshotBytes < 4<<20 {
				t.Errorf("snapshot of %d bytes, want at least the 4 MiB preloaded", res.SnapshotBytes)
			}
			if res.SnapshotTransfer <= 0 || res.SnapshotPrepare <= 0 {
				t.Errorf("transfer %v, preparation %v: want both > 0", res.SnapshotTransfer, res.SnapshotPrepare)
			}
			if res.Heartbeat.QueueWait.Count == 0 {
				t.Error("no heartbeat queue waits observed in the dispatcher histogram")
			}
			if res.Writes.Count == 0 {
				t.Error("no writes completed during the transfer")
			}
			if res.Append.Delivery.Count == 0 {
				t.Error("no MsgApp of the other groups reached the follower")
			}
			if res.LoopStall <= 0 {
				t.Error("no raft loop iteration measured on the leader around the snapshot")
			}
		})
	}
	if rep.Setup.Groups != 4 {
		t.Errorf("setup says %d groups, want 4", rep.Setup.Groups)
	}
	// The lanes' whole point, in real raft: the other groups' appends to
	// the follower share its connection with group 0's snapshot in the
	// legacy layout, so none overtakes it; in four-lane they travel in
	// their own lane and arrive while it is still in flight.
	if n := rep.Legacy.Append.DuringTransfer; n != 0 {
		t.Errorf("legacy: %d of the other groups' appends arrived during the snapshot transfer, want none (they queue behind it)", n)
	}
	if n := rep.FourLane.Append.DuringTransfer; n == 0 {
		t.Errorf("four-lane: none of the other groups' %d appends arrived during the snapshot transfer", rep.FourLane.Append.Delivery.Count)
	}
}

func BenchmarkHeadOfLineCluster(b *testing.B) {
	for b.Loop() {
		rep, err := RunCluster(context.Background(), Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rep.Legacy.Append.Delivery.P99.Microseconds()), "legacy-app-p99-µs")
		b.ReportMetric(float64(rep.FourLane.Append.Delivery.P99.Microseconds()), "fourlane-app-p99-µs")
		b.ReportMetric(rep.AppendP99Ratio(), "app-p99-ratio")
		b.ReportMetric(float64(rep.Legacy.Heartbeat.Delivery.P99.Microseconds()), "legacy-hb-p99-µs")
		b.ReportMetric(float64(rep.FourLane.Heartbeat.Delivery.P99.Microseconds()), "fourlane-hb-p99-µs")
		b.ReportMetric(float64(rep.FourLane.Elections), "fourlane-elections")
		b.ReportMetric(float64(max(rep.Legacy.LoopStall, rep.FourLane.LoopStall).Microseconds()), "leader-loop-stall-µs")
	}
}
