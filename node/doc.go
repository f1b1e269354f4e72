// Package node is the lane dispatcher: the part of a raft engine between
// Ready.Messages and the network that gives every peer one bounded queue and
// one worker per lane of the active layout (see package lanes), counts what it
// drops, and tells raft what happened to each message. It also exports the
// sync-mode gauge, the other series a rollout of the lanes flag reads.
//
// Any go.etcd.io/raft/v3 engine can import it: it depends on lanes, raft and
// client_golang only, never on storage, HTTP serving or a network transport.
// Those live in the sub-packages: node/transport (the lane TCP transport),
// node/replica (a runnable replica built on both) and node/replica/status
// (the /status document).
//
// # Several raft groups
//
// A node that runs many raft groups (multi-raft) shares one Dispatcher among
// them: Dispatcher.Group(id) is group id's handle, and every group's
// messages to a peer go through that peer's one set of lane queues, workers
// and transport connections. The group travels with each message to the
// Transport, and each group gets back only the reports about its own
// messages. A single-group engine uses Dispatch, Pending and ApplyReports on
// the Dispatcher itself, which are group 0's.
//
// # The caller's duties
//
//  1. Call a group's Dispatch and ApplyReports only from the goroutine that
//     owns that group's raft.RawNode: RawNode is not safe for concurrent
//     use, and reports go straight into it. Different groups' goroutines
//     may dispatch at the same time.
//  2. Call Dispatch only after the Ready's entries and HardState are
//     durable, as raft requires.
//  3. Select on the group's Pending in its raft loop and call ApplyReports
//     when it fires; also call ApplyReports after each Dispatch, which may
//     have dropped messages and so owes raft a ReportUnreachable or a
//     ReportSnapshot(SnapshotFailure).
//  4. Do not modify a message after passing it to Dispatch. Raft hands
//     ownership of Ready.Messages to the application and never touches them
//     again, so the dispatcher queues the pointers without copying; the
//     transport only reads them.
//  5. Provide a Transport that honours its context and delivers the group
//     with the message: RemovePeer and Close cancel the context and wait
//     for in-flight sends to return. A send that blocks past its
//     cancellation blocks RemovePeer and Close with it.
//  6. Pass a prometheus.Registerer: the metrics are registered on it, never
//     on the global registry. Wrap it with the replica's identity (the
//     node_id label) before passing it in; the dispatcher adds lane and
//     peer. Its series are per (lane, peer), never per group, because the
//     queues are shared.
//  7. AddPeer and RemovePeer may be called from any goroutine; peers are
//     shared by all groups. Call Close once, after every group's raft loop
//     has stopped; it stops every worker and waits for them.
//
// # What the dispatcher never does
//
// It never blocks the raft goroutine: a full lane, an unknown or a removed
// peer is a counted drop (elastickv_raft_dispatch_dropped_total{lane,peer}),
// never a wait. It never reorders messages within one (peer, lane), never
// retries a failed send (raft does, after ReportUnreachable), and never reads
// the environment: the layout arrives as a lanes.Mode chosen by the caller.
package node
