package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
)

// Defaults of Config.
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
	DefaultFrameTimeout       = 30 * time.Second
	DefaultIdleTimeout        = 2 * time.Minute
	DefaultMaxPendingConns    = 64
)

// MessageHandler receives one inbound raft message of raft group group. It
// is called from the goroutine reading that message's connection, so
// messages of one (peer, lane) arrive in order whatever their group; it may
// block (back-pressure slows that lane only). ctx is cancelled when the
// transport closes. An error drops the message (for a MsgSnap, the sender is
// told the snapshot was rejected).
type MessageHandler func(ctx context.Context, group uint64, m *raftpb.Message) error

// DialFunc opens the connection that carries one lane to one peer. Tests and
// benchmarks replace it to put a simulated link in the way.
type DialFunc func(ctx context.Context, peer uint64, lane lanes.Lane, addr string) (net.Conn, error)

// TraceEvent is one message seen by a TCP's Trace hook.
type TraceEvent struct {
	// Received is true for an inbound message, false for an outbound one.
	Received bool
	// Peer is the other node: the destination of a sent message, the
	// sender of a received one.
	Peer uint64
	Lane lanes.Lane
	// Group is the raft group the message belongs to.
	Group uint64
	Msg   *raftpb.Message
	// Start is when Send began (outbound) or when the message was whole
	// (inbound); End is when Send returned, or Start for inbound messages.
	Start, End time.Time
	// Err is Send's result.
	Err error
}

// Config configures a TCP. Zero durations and sizes mean
// the Default* values.
type Config struct {
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
	// Only these nodes may connect: a connection whose preamble names any
	// other sender is refused.
	Peers map[uint64]string
	// TLS, when set, runs every connection over mutual TLS 1.3.
	// Certificates is this node's certificate and RootCAs the CA that signs
	// every member's; each side verifies the other's chain and that its
	// certificate names the node the connection is with (see
	// IdentityScheme and Names). The transport clones it.
	TLS *tls.Config
	// Names maps raft ids to the node names their certificates carry; an
	// id missing from it is named by its decimal number.
	Names map[uint64]string
	// Insecure allows plaintext connections on a listener beyond loopback.
	// Without TLS anyone who reaches the port and knows a member's id can
	// speak as that member.
	Insecure bool
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
	// MaxPeerBufferBytes bounds the bytes of frames one peer has begun but
	// not finished sending, across all its lanes; a lane that would go over
	// waits for the others (at most FrameTimeout). Zero means MaxFrameBytes,
	// the least that lets a frame of the largest size arrive.
	MaxPeerBufferBytes int
	// MaxSnapshotBytes bounds the data of an inbound snapshot, which is
	// reassembled in memory.
	MaxSnapshotBytes int64
	// DialTimeout bounds opening a connection.
	DialTimeout time.Duration
	// WriteTimeout bounds writing one frame (one snapshot chunk).
	WriteTimeout time.Duration
	// HandshakeTimeout bounds an inbound connection's TLS handshake and
	// preamble together.
	HandshakeTimeout time.Duration
	// FrameTimeout bounds reading one inbound frame once its header has
	// arrived.
	FrameTimeout time.Duration
	// IdleTimeout closes an inbound connection that carries no frame for
	// that long; the sender redials on its next send.
	IdleTimeout time.Duration
	// MaxPendingConns caps the inbound connections still in their
	// handshake; more are closed as soon as they are accepted.
	MaxPendingConns int
	// SnapshotAckTimeout bounds the wait for the peer to confirm a snapshot
	// after its last byte was written.
	SnapshotAckTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between failed dials of one
	// (peer, lane); the wait doubles per failure.
	MinBackoff, MaxBackoff time.Duration
}

func (c *Config) applyDefaults() error {
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
		{"MaxPendingConns", &c.MaxPendingConns, DefaultMaxPendingConns},
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
	switch {
	case c.MaxPeerBufferBytes < 0:
		return fmt.Errorf("transport config: MaxPeerBufferBytes is %d, want >= 0", c.MaxPeerBufferBytes)
	case c.MaxPeerBufferBytes == 0:
		c.MaxPeerBufferBytes = c.MaxFrameBytes
	case c.MaxPeerBufferBytes < c.MaxFrameBytes:
		return fmt.Errorf("transport config: MaxPeerBufferBytes %d is below MaxFrameBytes %d: a frame of the largest size could never arrive", c.MaxPeerBufferBytes, c.MaxFrameBytes)
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
		{"FrameTimeout", &c.FrameTimeout, DefaultFrameTimeout},
		{"IdleTimeout", &c.IdleTimeout, DefaultIdleTimeout},
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
	if c.TLS != nil {
		if len(c.TLS.Certificates) == 0 {
			return errors.New("transport config: TLS has no certificate for this node")
		}
		if c.TLS.RootCAs == nil {
			return errors.New("transport config: TLS has no RootCAs to verify the members' certificates with")
		}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
