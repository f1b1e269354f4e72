// Package rollout drives the flag rollout described by a plan file
// (lanectl.yaml): it loads and validates the plan, keeps the journal of what
// was done on disk, runs the enable and disable commands on replicas over
// SSH, and decides each step of advance, rollback and status from the soak
// gates and from what the replicas themselves report.
//
// The rules it keeps, because it touches production:
//
//  1. Nothing changes a replica unless the previous soak passed, and nothing
//     is recorded as enabled until the replica proved it: the flag by the
//     target's metrics or the plan's read command (parsed as the replica
//     parses it), and every verify check of the plan's target over one
//     fresh scrape of every replica. Missing data and NaN never prove
//     anything.
//  2. A soak is decided in one place (Plan.DecideSoak), whoever asks:
//     advance, 'lanectl soak --config' or the demo.
//  3. Every step is journalled before and after it runs. The journal is
//     written atomically (temp file, fsync, rename, fsync of the directory)
//     and only while the exclusive lock next to it is held, so a run killed at
//     any point can be re-run, and two runs can never interleave.
//  4. Host keys are checked against known_hosts; there is no "accept any key"
//     mode. Every value substituted into a remote command is validated and
//     shell-quoted.
//  5. Notifications (the plan's notify: block) are never on the critical
//     path: they are sent in the background with a deadline, waited for
//     only after the lock is released, and a failed one is logged and
//     counted, never a changed verdict (see Notifier).
//
// The package never reads flags or the process environment, never calls
// os.Exit, and never prints: callers pass the home directory, the
// environment values it needs, clocks and writers in.
package rollout
