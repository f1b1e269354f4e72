// Package holbench measures head-of-line blocking in the raft dispatcher:
// how long appends and heartbeats to a follower wait while a large snapshot
// travels to it over a slow link, in the legacy two-lane layout and in the
// four-lane layout, run back to back with the same link.
//
// The link is simulated (Link): a token bucket shared by every connection
// from the leader to that follower, releasing bytes in small chunks so the
// connections interleave as flows on a real wire do. Everything else is real:
// the node package's Dispatcher and transport.TCP over loopback TCP.
//
// The package is for benchmarks and the 'lanectl bench hol' command. It
// must never be imported by the replica itself, and it only ever opens
// connections to 127.0.0.1.
package holbench
