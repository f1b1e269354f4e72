// Package gates decides whether a soak passed: did the canary replicas,
// running with the flag, behave at least as well as the baseline replicas
// without it, for the whole window?
//
// A gate is a named PromQL template plus limits. Evaluate renders each gate
// once for all replicas at once (grouped by the replica label), sends that
// one query to a Querier, and judges every replica's value in Go: canaries
// against absolute limits and against the worst baseline, baselines against
// their own limits. Each gate's verdict carries the resolved query, every
// replica's value, the limit and a one-line reason; the soak's verdict is the
// worst gate's, in the order fail > inconclusive > pass.
//
// Rules the package keeps, because a wrong pass lets a bad change reach the
// whole fleet:
//
//  1. Missing data is never a pass: a replica absent from a gate's answer,
//     a NaN value, or too little data in the window (the coverage gate) is
//     inconclusive.
//  2. Counters are read with increase(), which survives the restart a
//     replica needs to pick up the flag; a counter series that first
//     appears inside the window counts from zero, so the first drops that
//     created it are not lost.
//  3. A window that is not over yet is at best inconclusive.
//  4. An answer that came with warnings (Prometheus's sign of partial
//     data) makes a passing gate inconclusive; it never changes a fail.
//
// The package never talks to Prometheus itself and never reads flags or
// files: it is pure over the one-method Querier it declares.
package gates
