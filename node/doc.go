// Package node is a raft replica whose outbound traffic goes through the lane
// dispatcher, and the dispatcher itself.
//
// A Replica (NewReplica, Run) is a small replicated key-value store on
// go.etcd.io/raft/v3: its raft log and state machine live in bbolt files in
// its data directory, its peers are reached through a TCPTransport with one
// connection per (peer, lane), and its HTTP API serves /metrics, /healthz,
// /status and /kv. The environment (ELASTICKV_RAFT_DISPATCHER_LANES,
// ELASTICKV_FSM_SYNC_MODE) is read by the caller through SettingsFromEnv and
// passed in; nothing in this package reads it.
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
