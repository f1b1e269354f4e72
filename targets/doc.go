// Package targets is what lanectl assumes about each system it rolls out:
// the label that names a replica, the metrics each gate reads, how a
// flag's running value is proven, what a healthy and caught-up replica
// shows, and how status breaks drops down.
//
// Two targets are built in: lanectl (the replica in node/replica, and any
// engine exporting node's metrics) and elastickv (stock upstream
// elastickv, whose metrics carry a group label and no lane label).
//
// Rules the package keeps:
//
//  1. It is the one place a target's metric names appear. The rest of
//     lanectl asks a Target; dashboards, gates and the rollout never spell
//     a metric themselves.
//  2. It is data: no I/O, no clocks, no goroutines. Evaluating what it
//     describes is the job of gates and rollout.
//  3. Saying what a target cannot see is part of the target (Blind), so
//     a gate table never implies a check it did not make.
package targets
