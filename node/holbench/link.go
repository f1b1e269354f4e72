package holbench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// DefaultLinkChunk is the piece size a Link releases bytes in: small enough
// that a heartbeat waits at most a fraction of a millisecond behind snapshot
// bytes on a fast link, large enough that the token bucket is not the
// bottleneck on the CPU.
const DefaultLinkChunk = 16 << 10

// Link is a simulated network link of fixed bandwidth, shared by every
// connection wrapped with it, as the connections between two hosts share one
// wire. Writes pass through a token bucket in chunks, so the connections'
// bytes interleave chunk by chunk the way packets of different TCP flows do,
// instead of one connection holding the link for a whole write.
//
// A Link shapes one direction: wrap the connections one node opens towards
// another. The bytes then reach loopback TCP, which is effectively infinite,
// so all queueing happens in the bucket, in arrival order.
type Link struct {
	lim   *rate.Limiter
	chunk int
}

// NewLink returns a link carrying bytesPerSecond, released in pieces of
// chunk bytes (DefaultLinkChunk when chunk <= 0).
func NewLink(bytesPerSecond int64, chunk int) (*Link, error) {
	if bytesPerSecond <= 0 {
		return nil, fmt.Errorf("link rate %d bytes/s: want > 0", bytesPerSecond)
	}
	if chunk <= 0 {
		chunk = DefaultLinkChunk
	}
	return &Link{lim: rate.NewLimiter(rate.Limit(bytesPerSecond), chunk), chunk: chunk}, nil
}

// ChunkTime is how long one chunk occupies the link: the longest a small
// message waits behind another connection's bulk transfer.
func (l *Link) ChunkTime() time.Duration {
	return time.Duration(float64(l.chunk) / float64(l.lim.Limit()) * float64(time.Second))
}

// Wrap returns c with its writes shaped by the link. Reads are untouched.
func (l *Link) Wrap(c net.Conn) net.Conn {
	return wrap(c, func() *Link { return l })
}

// Switch puts a Link in the way of connections that are already open, or
// takes it out again. The cluster scenario wraps every connection when it is
// dialled, before anyone knows which node will lead, and switches the slow
// link on between the leader and one follower once an election is over.
type Switch struct {
	link atomic.Pointer[Link]
}

// Set routes the switch's connections over l from their next write on; nil
// lets them write at full speed.
func (s *Switch) Set(l *Link) { s.link.Store(l) }

// Wrap returns c with its writes going through whatever link is set.
func (s *Switch) Wrap(c net.Conn) net.Conn { return wrap(c, s.link.Load) }

func wrap(c net.Conn, link func() *Link) net.Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &linkConn{Conn: c, link: link, closed: ctx, cancel: cancel}
}

// linkConn is one connection over a Link. Deadlines and Close interrupt a
// write waiting for the link, as they would one waiting for the socket.
type linkConn struct {
	net.Conn
	link   func() *Link
	closed context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	deadline time.Time
}

func (c *linkConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		link := c.link()
		if link == nil {
			m, err := c.Conn.Write(p)
			return written + m, err
		}
		n := min(len(p), link.chunk)
		if err := c.wait(link, n); err != nil {
			return written, err
		}
		m, err := c.Conn.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (c *linkConn) wait(link *Link, n int) error {
	c.mu.Lock()
	deadline := c.deadline
	c.mu.Unlock()
	ctx := c.closed
	if !deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	err := link.lim.WaitN(ctx, n)
	switch {
	case err == nil:
		return nil
	case c.closed.Err() != nil:
		return net.ErrClosed
	case !deadline.IsZero():
		// WaitN also fails early when the wait would pass the deadline.
		return os.ErrDeadlineExceeded
	}
	return err
}

func (c *linkConn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *linkConn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *linkConn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *linkConn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

// CloseWrite half-closes the underlying connection when it supports it.
func (c *linkConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("link: underlying connection cannot half-close")
}
