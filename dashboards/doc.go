// Package dashboards ships lanectl's Grafana dashboards and Prometheus rules
// and exports them for operators to import.
//
// The files are embedded in the lanectl binary: lanes-overview.json (the
// dispatcher and raft on every replica), lanes-rollout.json (a soak in
// progress, canary next to baselines) and lanes.rules.yml (recording rules
// and the alerts that page on heartbeat-lane drops, a stalled rollout, an
// unexpected sync mode, rising transport errors and election storms).
//
// The dashboard JSON is generated: edit dashboards/internal/gen and run
// go generate ./dashboards. The package's tests hold the files to what the
// replicas really export: every query must parse with Prometheus' parser and
// name only metrics that node/ registers (or up, or a recording rule defined
// here), the rules must pass promtool, and every query must return data
// against a live cluster. This package must never fetch or template anything
// at export time; what is exported is exactly what was tested.
package dashboards

//go:generate go run ./internal/gendashboards -dir .
