// Package demo runs the whole lanectl story on one machine, for someone who
// has just cloned the repository: a three-replica cluster in this process
// (real raft over loopback TCP, temporary data directories, every replica on
// the legacy layout and reading its own env file), four raft groups per
// replica sharing each peer's lanes and connections, write load on every
// group, snapshots of one group forced over shaped links to one follower
// while the others keep appending to it, the embedded metrics store
// scraping the replicas, and a real plan file walked stage by stage with the
// rollout driver, the code path of 'lanectl advance'.
//
// The summary shows why the flag exists: the other groups' appends to that
// follower during the snapshot transfers, measured in the replicas' own
// dispatchers and transports (transferTrace), by the sending leader's
// layout. It prints the comparison and never judges it: the gates judge
// the rollout, and no part of the demo depends on which layout was faster. Only the runner differs from production: it runs the
// plan's env-file rewrite with sh, as the SSH runner would on the host, and
// then restarts the replica in-process where production runs systemctl
// restart.
//
// What it must never do: reach beyond this machine (no SSH, no external
// Prometheus, nothing but 127.0.0.1 listeners on port 0), read the process
// environment (beyond where the system keeps temporary files), print on its
// own (lines go to the Log writer and callbacks the caller passes), or leave
// anything behind. Every replica, goroutine and file it creates is gone when
// Run returns, whether the rollout completed, was refused, failed or was
// cancelled.
package demo
