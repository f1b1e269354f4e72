// Package replica is a runnable lanectl replica: a small replicated
// key-value store on go.etcd.io/raft/v3 whose outbound raft traffic goes
// through the lane dispatcher (package node) and the lane TCP transport
// (package node/transport). It is what 'lanectl node run' starts, and what
// the demo, the benchmarks and the tests run in process (LocalCluster).
//
// A Replica (New, Run) keeps its raft log in raft.db and its state machine in
// fsm.db, both bbolt files in its data directory, and serves /metrics,
// /healthz, /status (the document of package node/replica/status), /kv/{key}
// and /admin/snapshot over HTTP. One goroutine, Run's raft loop, owns the
// raft.RawNode; everything else talks to it through channels.
//
// The caller's duties:
//
//  1. Read the environment (ELASTICKV_RAFT_DISPATCHER_LANES,
//     ELASTICKV_FSM_SYNC_MODE) once, with SettingsFromEnv, and pass the
//     result in Config; nothing in this package reads it.
//  2. Call Run once and cancel its context to stop: a leader hands its
//     leadership over before it exits. Close releases a replica that was
//     never run.
//  3. Give the same Peers, in any order, to every member: the membership is
//     static and checked against the one stored in raft.db.
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
