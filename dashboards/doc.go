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
// go generate ./dashboards. The rules are a template (lanes.rules.yml.tmpl)
// with two values that depend on a rollout, the expected sync mode and how
// long the flag may differ across replicas (RuleOptions); lanes.rules.yml is
// its rendering with DefaultRuleOptions, and Export renders it for the
// options it is given. The package's tests hold the files to what the
// replicas really export: every query must parse with Prometheus' parser and
// name only metrics that node/ registers (or up, or a recording rule defined
// here), the rules must pass promtool's checks and unit tests (the default
// rendering and a nosync one), and every query must return data against a
// live cluster. Nothing is fetched at export time.
package dashboards

//go:generate go run ./internal/gendashboards -dir .
