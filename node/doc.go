// Package node is a raft replica whose outbound traffic goes through the lane
// dispatcher, and the dispatcher itself.
//
// The Dispatcher gives every peer one bounded queue and one worker per lane of
// the active layout (see package lanes). The goroutine that owns the
// raft.RawNode hands it Ready.Messages; the dispatcher never blocks that
// goroutine: a full lane, an unknown or a removed peer is a counted drop. What
// happens to each message — dropped, failed in the transport, or sent — is
// reported back to raft through ApplyReports on the owning goroutine, because
// RawNode is not safe for concurrent use.
//
// The caller's duties:
//
//  1. Call Dispatch, AddPeer, RemovePeer and ApplyReports only from the
//     goroutine that owns the RawNode.
//  2. Call Dispatch only after the Ready's entries and HardState are durable,
//     as raft requires.
//  3. Select on Pending in the raft loop and call ApplyReports when it fires;
//     also call ApplyReports after each Dispatch, which may have dropped.
//  4. Do not modify a message after passing it to Dispatch. Raft hands
//     ownership of Ready.Messages to the application and never touches them
//     again, so the dispatcher queues the pointers without copying; the
//     transport only reads them.
//  5. Provide a Transport that honours its context: RemovePeer and Close
//     cancel it and wait for in-flight sends to return.
//
// Metrics are registered on the prometheus.Registerer passed in, never on the
// global registry; the replica wraps it with its node_id label.
package node
