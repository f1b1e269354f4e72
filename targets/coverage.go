package targets

import "strings"

// coverageQuery is the coverage gate's query over the metrics a target's
// gates read: the fraction of the window's Steps at which the replica had
// a sample of every one of them. Presence is tested every Step, looking
// back two Steps, so one late or missed scrape is not a gap but a dead
// replica is. The tests start one Step into the window (PresenceWindow), so
// the first looks back to the window's start and no further.
func coverageQuery(metrics ...string) string {
	var b strings.Builder
	b.WriteString("clamp_max(count_over_time((\n")
	for i, m := range metrics {
		b.WriteString("  ")
		if i > 0 {
			b.WriteString("and ")
		}
		b.WriteString("group by ({{.By}}) (last_over_time(" + m + "{{sel}}[{{.Lookback}}]))\n")
	}
	b.WriteString(")[{{.PresenceWindow}}:{{.Step}}]) / {{.PresenceSteps}}, 1)")
	return b.String()
}
