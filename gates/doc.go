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
// The package knows no metric names: a gate set and the presence metric
// (Request.PresenceMetric, the series every replica always exports) come
// from a target, in package targets.
//
// Gates decided outside PromQL. Where no metric can show what a gate
// judges (stock elastickv's flag), the gate has Spec.External naming what
// decides it and no query. The caller:
//
//  1. finds each replica's value itself (the rollout: 1 when the journal
//     and the read command say the flag was on for the whole window, 0
//     when off) and passes it in Request.External[gate name] as an
//     ExternalValue, with a few words of evidence;
//  2. gives at most one value per replica, and only for replicas of the
//     soak and gates of the set decided outside PromQL, or Evaluate
//     returns ErrBadRequest.
//
// Evaluate judges those values against the gate's limits like any other
// and sends no query for it. A replica without a value is inconclusive,
// its reason saying what should have decided it. Every reason of such a
// gate starts "decided from <Spec.External>", and its GateResult has no
// Query but DecidedFrom. A plan that gives such a gate a query makes it an
// ordinary PromQL gate.
//
// Events. A KindCount gate with Spec.Events counts events (restarts) over
// (start, t] in a way that only grows with t. When a replica breaks its
// limit, Evaluate bisects t over the window, one query per probe, and its
// reason gives each event (up to three) to within one Step.
//
// The package never talks to Prometheus itself and never reads flags or
// files: it is pure over the one-method Querier it declares.
package gates
