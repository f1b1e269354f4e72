// Package transport is the lane TCP transport: it carries raft messages
// between nodes with one TCP connection per (peer, lane), so the bytes of a
// snapshot already in one socket never delay the heartbeats and appends
// travelling in the others. TCP implements node.Transport, the interface the
// dispatcher sends through.
//
// The wire format is described in transport_wire.go. Every connection starts
// with a preamble naming the lane, the sender and the receiver; frames carry
// a length and a CRC-32C, and every frame and reassembled snapshot is bounded
// by the receiver's limits before it is allocated.
//
// Who may talk. An inbound connection is served only once it is
// authenticated, within HandshakeTimeout: its preamble's sender must be one
// of the configured peers, and with Config.TLS (mutual TLS 1.3) its
// certificate must chain to the members' CA and name that sender in the URI
// SAN lanectl-node:<name> (IdentityScheme, CertIdentity). Every message's
// From must then be the connection's sender; anything else closes the
// connection with the reason. The dialer checks the acceptor's certificate
// the same way. Without TLS, New refuses a listener beyond loopback unless
// Config.Insecure allows it.
//
// What it costs. At most MaxPendingConns connections are in their handshake
// at once; more are closed on accept. An authenticated peer has one
// connection per lane: a newer one replaces the older. A frame's payload is
// read in pieces as it arrives, never allocated to the length announced, one
// peer's unfinished frames share MaxPeerBufferBytes across its lanes, a
// frame must arrive within FrameTimeout of its header, and a connection
// without a frame for IdleTimeout is closed.
//
// The caller's duties:
//
//  1. Give a Handler that routes an inbound message to its raft group and
//     may block (back-pressure slows that one lane of that one peer); it is
//     called from the connection's reading goroutine, in arrival order.
//  2. Call Close once; it closes every connection and waits for all of the
//     transport's goroutines.
//
// It never retries a send on its own (raft does, after the dispatcher's
// ReportUnreachable), never hands a message from a non-member to the
// handler, never listens on an address it was not given, and never reads
// the environment.
package transport
