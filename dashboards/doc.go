// Package dashboards ships lanectl's Grafana dashboards and Prometheus rules
// and exports them for operators to import, one Set per target.
//
// The lanectl target (the default): lanes-overview.json (the dispatcher and
// raft on every replica), lanes-rollout.json (a soak in progress, canary
// next to baselines) and lanes.rules.yml (recording rules and the alerts
// that page on heartbeat-lane drops, a stalled rollout, an unexpected sync
// mode, rising transport errors and election storms).
//
// The elastickv target (stock upstream elastickv): elastickv-overview.json
// (drops, errors by gRPC code, outbound traffic, step-queue rejections and
// raft state per raft group), elastickv-rollout.json (a soak in progress,
// each signal over a node's raft groups) and elastickv.rules.yml
// (recording rules and alerts on drops, errors, a full step queue, a group
// without a leader, an unexpected sync mode and election storms). Stock elastickv has no lane
// label and nothing that shows the flag, so these files have no per-lane
// panels, no flag panel and no flag alert, and say so.
//
// The dashboard JSON is generated: edit dashboards/internal/gen and run
// go generate ./dashboards. The rules are templates (*.rules.yml.tmpl) with
// values that depend on a rollout, the expected sync mode and, where the
// target shows the flag, how long it may differ across replicas
// (RuleOptions); the shipped rules files are their renderings with
// DefaultRuleOptions, and Set.Export renders them for the options it is
// given. Metric names come from package targets, never from this package.
//
// The package's tests hold the files to what the replicas really export:
// every query must parse with Prometheus' parser and name only metrics a
// real lanectl replica registers, or that the real elastickv captures in
// targets/elastickvtest contain (or up, or a recording rule defined here);
// the rules must pass promtool's checks and unit tests; and every query
// must evaluate against a live Prometheus scraping a real cluster or the
// served captures. Nothing is fetched at export time.
package dashboards

//go:generate go run ./internal/gendashboards -dir .
