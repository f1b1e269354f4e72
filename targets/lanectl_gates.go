package targets

import "github.com/lanectl/lanectl/gates"

// lanectlGates is the lanectl target's gate set for the four-lane
// dispatcher rollout, in the order tables show it. Every limit can be
// changed per gate by a plan's soak.gates block.
func lanectlGates() gates.Set {
	return gates.Set{
		{
			Name:  "coverage",
			Help:  "enough data: every replica exported the metrics the gates read for most of the window",
			What:  "metrics present for",
			Kind:  gates.KindFraction,
			Scope: gates.ScopeAll,
			Query: coverageQuery(LanectlLanesEnabled, LanectlSyncMode, LanectlLeaderChanges,
				LanectlLastContact, LanectlSent),
			Min:       ptr(0.9),
			Violation: gates.Inconclusive,
		},
		{
			Name:        "flag",
			Help:        "the flag was on for the whole window on canaries and off on baselines",
			What:        "four-lane dispatcher on for",
			Kind:        gates.KindFraction,
			Scope:       gates.ScopeCanary,
			Query:       `avg by ({{.By}}) (avg_over_time(` + LanectlLanesEnabled + `{{sel}}[{{.Window}}]))`,
			Min:         ptr(1),
			BaselineMax: ptr(0),
			Violation:   gates.Fail,
		},
		syncModeGate(LanectlSyncMode),
		{
			Name:      "restarts",
			Help:      "a canary did not restart inside the window (the restart that picks up the flag comes before it)",
			What:      "restarts",
			Kind:      gates.KindCount,
			Scope:     gates.ScopeCanary,
			Query:     `max by ({{.By}}) (changes(` + LanectlProcessStartTime + `{{sel}}[{{.Window}}]))`,
			Max:       ptr(0),
			Events:    true,
			Violation: gates.Fail,
		},
		{
			Name:      "heartbeat_drops",
			Help:      "no heartbeat-lane message dropped on a canary",
			What:      "heartbeat-lane drops",
			Kind:      gates.KindCount,
			Scope:     gates.ScopeCanary,
			Query:     `{{increase "` + LanectlDropped + `" ` + "`" + `lane="heartbeat"` + "`" + `}}`,
			Max:       ptr(0),
			Violation: gates.Fail,
		},
		{
			Name:  "replication_drop_ratio",
			Help:  "share of replication/other-lane messages dropped (legacy: normal lane) no worse than the worst baseline",
			What:  "replication/other-lane drop ratio",
			Kind:  gates.KindRatio,
			Scope: gates.ScopeCanary,
			Query: `{{increase "` + LanectlDropped + `" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}}
/ ({{increase "` + LanectlDropped + `" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}}
 + {{increase "` + LanectlSent + `" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: gates.Fail,
		},
		{
			Name:  "dispatch_error_ratio",
			Help:  "share of messages the transport failed to send, all lanes, no worse than the worst baseline",
			What:  "dispatch error ratio",
			Kind:  gates.KindRatio,
			Scope: gates.ScopeCanary,
			Query: `{{increase "` + LanectlErrors + `"}}
/ ({{increase "` + LanectlErrors + `"}} + {{increase "` + LanectlSent + `"}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: gates.Fail,
		},
		{
			Name:      "leader_changes",
			Help:      "leader changes seen by a canary no more than by the worst baseline (+1 for its own restart)",
			What:      "leader changes seen",
			Kind:      gates.KindCount,
			Scope:     gates.ScopeCanary,
			Query:     `{{increase "` + LanectlLeaderChanges + `"}}`,
			Factor:    ptr(1),
			Slack:     1,
			Violation: gates.Fail,
		},
		{
			Name:      "last_contact",
			Help:      "a canary as follower always heard from its leader within the election timeout",
			What:      "max time without contact from the leader",
			Kind:      gates.KindSeconds,
			Scope:     gates.ScopeCanary,
			Query:     `max by ({{.By}}) (max_over_time(` + LanectlLastContact + `{{sel}}[{{.Window}}]))`,
			Max:       ptr(1),
			Violation: gates.Fail,
		},
	}
}

// syncModeGate judges the sync-mode gauge, which both targets export.
func syncModeGate(metric string) gates.Spec {
	return gates.Spec{
		Name:  "sync_mode",
		Help:  "every replica applied entries in the expected sync mode for the whole window",
		What:  "in the expected sync mode for",
		Kind:  gates.KindFraction,
		Scope: gates.ScopeAll,
		Query: `avg by ({{.By}}) (avg_over_time(` + metric + `{{sel (printf "mode=%q" .ExpectSyncMode)}}[{{.Window}}]))
  or 0 * group by ({{.By}}) (last_over_time(` + metric + `{{sel}}[{{.Window}}]))`,
		Min:       ptr(1),
		Violation: gates.Fail,
	}
}

func ptr(f float64) *float64 { return &f }
