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
// The caller's duties:
//
//  1. Give a Handler that routes an inbound message to its raft group and
//     may block (back-pressure slows that one lane of that one peer); it is
//     called from the connection's reading goroutine, in arrival order.
//  2. Call Close once; it closes every connection and waits for all of the
//     transport's goroutines.
//
// It never retries a send on its own (raft does, after the dispatcher's
// ReportUnreachable), never listens on an address it was not given, and
// never reads the environment.
package transport
