package gates

// DefaultSet returns the gates for the four-lane dispatcher rollout, in the
// order they are shown. Every limit can be changed per gate with Overrides
// (a plan file's soak.gates block).
func DefaultSet() Set {
	return Set{
		{
			Name:  "coverage",
			Help:  "enough data: every replica exported the metrics the gates read for most of the window",
			What:  "metrics present for",
			Kind:  KindFraction,
			Scope: ScopeAll,
			// Presence is tested every Step, looking back two Steps, so one
			// late or missed scrape is not a gap but a dead replica is. The
			// tests start one Step into the window (PresenceWindow), so the
			// first looks back to the window's start and no further.
			Query: `clamp_max(count_over_time((
  group by ({{.By}}) (last_over_time(elastickv_raft_dispatcher_lanes_enabled{{sel}}[{{.Lookback}}]))
  and group by ({{.By}}) (last_over_time(elastickv_fsm_apply_sync_mode{{sel}}[{{.Lookback}}]))
  and group by ({{.By}}) (last_over_time(elastickv_raft_leader_changes_seen_total{{sel}}[{{.Lookback}}]))
  and group by ({{.By}}) (last_over_time(elastickv_raft_last_contact_seconds{{sel}}[{{.Lookback}}]))
  and group by ({{.By}}) (last_over_time(elastickv_raft_dispatch_sent_total{{sel}}[{{.Lookback}}]))
)[{{.PresenceWindow}}:{{.Step}}]) / {{.PresenceSteps}}, 1)`,
			Min:       ptr(0.9),
			Violation: Inconclusive,
		},
		{
			Name:        "flag",
			Help:        "the flag was on for the whole window on canaries and off on baselines",
			What:        "four-lane dispatcher on for",
			Kind:        KindFraction,
			Scope:       ScopeCanary,
			Query:       `avg by ({{.By}}) (avg_over_time(elastickv_raft_dispatcher_lanes_enabled{{sel}}[{{.Window}}]))`,
			Min:         ptr(1),
			BaselineMax: ptr(0),
			Violation:   Fail,
		},
		{
			Name:  "sync_mode",
			Help:  "every replica applied entries in the expected sync mode for the whole window",
			What:  "in the expected sync mode for",
			Kind:  KindFraction,
			Scope: ScopeAll,
			Query: `avg by ({{.By}}) (avg_over_time(elastickv_fsm_apply_sync_mode{{sel (printf "mode=%q" .ExpectSyncMode)}}[{{.Window}}]))
  or 0 * group by ({{.By}}) (last_over_time(elastickv_fsm_apply_sync_mode{{sel}}[{{.Window}}]))`,
			Min:       ptr(1),
			Violation: Fail,
		},
		{
			Name:      "heartbeat_drops",
			Help:      "no heartbeat-lane message dropped on a canary",
			What:      "heartbeat-lane drops",
			Kind:      KindCount,
			Scope:     ScopeCanary,
			Query:     `{{increase "elastickv_raft_dispatch_dropped_total" ` + "`" + `lane="heartbeat"` + "`" + `}}`,
			Max:       ptr(0),
			Violation: Fail,
		},
		{
			Name:  "replication_drop_ratio",
			Help:  "share of replication/other-lane messages dropped (legacy: normal lane) no worse than the worst baseline",
			What:  "replication/other-lane drop ratio",
			Kind:  KindRatio,
			Scope: ScopeCanary,
			Query: `{{increase "elastickv_raft_dispatch_dropped_total" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}}
/ ({{increase "elastickv_raft_dispatch_dropped_total" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}}
 + {{increase "elastickv_raft_dispatch_sent_total" ` + "`" + `lane=~"replication|other|normal"` + "`" + `}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: Fail,
		},
		{
			Name:  "dispatch_error_ratio",
			Help:  "share of messages the transport failed to send, all lanes, no worse than the worst baseline",
			What:  "dispatch error ratio",
			Kind:  KindRatio,
			Scope: ScopeCanary,
			Query: `{{increase "elastickv_raft_dispatch_errors_total"}}
/ ({{increase "elastickv_raft_dispatch_errors_total"}} + {{increase "elastickv_raft_dispatch_sent_total"}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: Fail,
		},
		{
			Name:      "leader_changes",
			Help:      "leader changes seen by a canary no more than by the worst baseline (+1 for its own restart)",
			What:      "leader changes seen",
			Kind:      KindCount,
			Scope:     ScopeCanary,
			Query:     `{{increase "elastickv_raft_leader_changes_seen_total"}}`,
			Factor:    ptr(1),
			Slack:     1,
			Violation: Fail,
		},
		{
			Name:      "last_contact",
			Help:      "a canary as follower always heard from its leader within the election timeout",
			What:      "max time without contact from the leader",
			Kind:      KindSeconds,
			Scope:     ScopeCanary,
			Query:     `max by ({{.By}}) (max_over_time(elastickv_raft_last_contact_seconds{{sel}}[{{.Window}}]))`,
			Max:       ptr(1),
			Violation: Fail,
		},
	}
}
