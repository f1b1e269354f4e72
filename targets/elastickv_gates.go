package targets

import "github.com/lanectl/lanectl/gates"

// FlagFromJournal is what decides the flag gate of a target whose metrics
// cannot show the flag (gates.Spec.External): the rollout journal's enable
// and disable times, and the plan's read command run at verify time and
// again when the soak is judged.
const FlagFromJournal = "the journal and commands.read"

// elastickvGates is the elastickv target's gate set, in table order. It
// watches what elastickv's own rollout plan for the flag names (drops,
// errors, heartbeat loss), with the counters stock elastickv has: per raft
// group, no lane label, and no sent counter, so ratios are over the
// messages the outbound stream accepted.
func elastickvGates() gates.Set {
	return gates.Set{
		{
			Name:  "coverage",
			Help:  "enough data: every replica exported the metrics the gates read for most of the window",
			What:  "metrics present for",
			Kind:  gates.KindFraction,
			Scope: gates.ScopeAll,
			Query: coverageQuery(ElastickvLocalState, ElastickvSyncMode, ElastickvDropped,
				ElastickvErrors, ElastickvSendStream, ElastickvStepQueueFull,
				ElastickvLeaderChanges, ElastickvLastContact),
			Min:       ptr(0.9),
			Violation: gates.Inconclusive,
		},
		{
			Name:        "flag",
			Help:        "the flag was on for the whole window on canaries and off on baselines, per the journal and commands.read",
			What:        "flag on for",
			Kind:        gates.KindFraction,
			Scope:       gates.ScopeCanary,
			External:    FlagFromJournal,
			Min:         ptr(1),
			BaselineMax: ptr(0),
			Violation:   gates.Fail,
		},
		syncModeGate(ElastickvSyncMode),
		{
			Name:  "restarts",
			Help:  "a canary did not restart inside the window (counter resets; the restart that picks up the flag comes before it)",
			What:  "restarts",
			Kind:  gates.KindCount,
			Scope: gates.ScopeCanary,
			// Every raft group's stream counter resets at a restart and
			// grows between scrapes, so the group that saw the most resets
			// counts the restarts.
			Query:     `max by ({{.By}}) (resets(` + ElastickvSendStream + `{{sel}}[{{.Window}}]))`,
			Max:       ptr(0),
			Events:    true,
			Violation: gates.Fail,
		},
		{
			Name:  "dispatch_drop_ratio",
			Help:  "share of outbound raft messages dropped before the transport, all groups and lanes, no worse than the worst baseline",
			What:  "dispatch drop ratio",
			Kind:  gates.KindRatio,
			Scope: gates.ScopeCanary,
			Query: `{{increase "` + ElastickvDropped + `"}}
/ ({{increase "` + ElastickvDropped + `"}} + {{increase "` + ElastickvSendStream + `"}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: gates.Fail,
		},
		{
			Name:  "dispatch_error_ratio",
			Help:  "share of outbound raft messages the transport failed to send, all groups, no worse than the worst baseline",
			What:  "dispatch error ratio",
			Kind:  gates.KindRatio,
			Scope: gates.ScopeCanary,
			Query: `{{increase "` + ElastickvErrors + `"}}
/ ({{increase "` + ElastickvErrors + `"}} + {{increase "` + ElastickvSendStream + `"}})`,
			Factor:    ptr(1.1),
			Slack:     0.001,
			Violation: gates.Fail,
		},
		{
			Name:      "step_queue_full",
			Help:      "inbound raft messages refused because a group's step queue was full, no more than the worst baseline",
			What:      "step-queue-full events",
			Kind:      gates.KindCount,
			Scope:     gates.ScopeCanary,
			Query:     `{{increase "` + ElastickvStepQueueFull + `"}}`,
			Factor:    ptr(1),
			Violation: gates.Fail,
		},
		{
			Name:      "leader_changes",
			Help:      "leader changes seen by a canary, all groups, no more than by the worst baseline (+1 for its own restart)",
			What:      "leader changes seen",
			Kind:      gates.KindCount,
			Scope:     gates.ScopeCanary,
			Query:     `{{increase "` + ElastickvLeaderChanges + `"}}`,
			Factor:    ptr(1),
			Slack:     1,
			Violation: gates.Fail,
		},
		{
			Name:      "last_contact",
			Help:      "a canary, as follower in any group, always heard from its leader within the election timeout",
			What:      "max time without contact from a leader, worst group",
			Kind:      gates.KindSeconds,
			Scope:     gates.ScopeCanary,
			Query:     `max by ({{.By}}) (max_over_time(` + ElastickvLastContact + `{{sel}}[{{.Window}}]))`,
			Max:       ptr(1),
			Violation: gates.Fail,
		},
	}
}

// elastickvBlind is what stock elastickv's metrics cannot show.
var elastickvBlind = []string{
	"heartbeat drops cannot be told from other drops: the dispatch counters have no lane label, so dispatch_drop_ratio counts every lane together",
	"there is no sent counter: drop and error ratios are over the messages the outbound stream accepted (send_stream_messages), snapshots excluded",
	"the flag's value is not in the metrics: the flag gate is decided from the journal and commands.read, not from the whole window's samples",
	"there is no process collector: restarts are counter resets, so a restart between two scrapes whose counters grew past their old values is missed",
}
