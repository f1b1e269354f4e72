// Package replica is a runnable lanectl replica: a small replicated
// key-value store on go.etcd.io/raft/v3 whose outbound raft traffic goes
// through the lane dispatcher (package node) and the lane TCP transport
// (package node/transport). It is what 'lanectl node run' starts, and what
// the demo, the benchmarks and the tests run in process (LocalCluster).
//
// A Replica (New, Run) runs Config.Groups raft groups (one by default), as a
// multi-raft store does. Each group has its own raft goroutine, which owns
// its raft.RawNode (everything else talks to it through channels), its raft
// log in raft.db and its state machine in fsm.db (bbolt files; group N's in
// DataDir/group-N), and its snapshots, whose data is in files of their own
// and which the group makes off its raft goroutine. A key belongs to the
// group KeyGroup names. All groups share the replica's one dispatcher, whose
// lanes to a peer carry every group's messages, its one transport and its
// HTTP API: /metrics, /healthz, /status (the document of package
// node/replica/status), /kv/{key} and /admin/snapshot.
//
// The caller's duties:
//
//  1. Read the environment (ELASTICKV_RAFT_DISPATCHER_LANES,
//     ELASTICKV_FSM_SYNC_MODE) once, with SettingsFromEnv, and pass the
//     result in Config; nothing in this package reads it.
//  2. Call Run once and cancel its context to stop: in every group it
//     leads, the replica hands its leadership over before it exits. Close
//     releases a replica that was never run.
//  3. Give the same Peers, in any order, and the same Groups to every
//     member: the membership is static and checked against the one stored
//     in raft.db, and a data directory keeps the group count it was made
//     with.
//
// Config.PeerTLS puts the raft transport under mutual TLS, each member's
// certificate naming it (lanectl-node:<Name>); Config.HTTPTLS serves the
// HTTP API over TLS, to clients of a given CA only when ClientCAs is set;
// Config.HTTPToken guards PUT /kv and POST /admin/snapshot. Without TLS a
// replica only serves on loopback, unless Config.Insecure.
//
// It never fsyncs less than its sync mode says, never starts on a data
// directory with only part of a replica's state, and never listens on
// anything it was not given.
package replica
