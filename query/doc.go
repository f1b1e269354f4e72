// Package query reads metrics for lanectl's soak gates. It offers two
// backends that answer the same PromQL with the same numbers:
//
//   - Prometheus, a client of the Prometheus HTTP API (and of the compatible
//     APIs of Thanos, Mimir and VictoriaMetrics), configured with the same
//     http_config block Prometheus itself uses;
//   - Embedded, which scrapes replicas' /metrics endpoints into a private
//     TSDB and evaluates queries with the upstream promql engine, for users
//     without a Prometheus and for the demo.
//
// Both return instant vectors as plain Go values (Vector), so callers never
// see client_golang or promql types. Errors are classified with the sentinel
// errors below so a caller can tell an unreachable server from a bad query.
//
// Two promises hold for every caller, so none has to remember them: a
// query to Prometheus ends at its deadline and its answer is bounded in
// size (see NewPrometheus), and a URL this package prints has its
// password redacted (RedactURL). Label names are rendered with LabelName,
// which quotes the ones PromQL cannot take bare.
//
// This package must never judge what it reads: thresholds, verdicts and the
// notion of a canary live in package gates. It never evaluates PromQL by
// hand either; only the upstream engine does.
package query
