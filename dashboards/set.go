package dashboards

import (
	"fmt"
	"slices"
	"text/template"

	"github.com/lanectl/lanectl/targets"
)

// Names of the rules files, one per target.
const (
	LanectlRulesFile   = "lanes.rules.yml"
	ElastickvRulesFile = "elastickv.rules.yml"
)

// Set is what lanectl ships for one target: dashboards that read only the
// metrics the target exports, and a rules file rendered from a template.
type Set struct {
	// Target is the target's name, as targets.Lookup knows it.
	Target string
	// Dashboards are the dashboard JSON files, sorted.
	Dashboards []string
	// RulesFile is the Prometheus rules file.
	RulesFile string
	// SeesFlag is true when the target's metrics show the flag's value,
	// so its rules carry the flag-diverged alert and read
	// RuleOptions.FlagDivergedFor. A target without it can only say that
	// it cannot chart the flag.
	SeesFlag bool

	rules *template.Template
	data  func(RuleOptions) any
}

// Sets returns every target's set, in targets.Names order.
func Sets() []Set {
	return []Set{lanectlSet(), elastickvSet()}
}

// ForTarget returns the set of the built-in target called name; an
// unknown name is targets.ErrUnknownTarget.
func ForTarget(name string) (Set, error) {
	if _, err := targets.Lookup(name); err != nil {
		return Set{}, fmt.Errorf("dashboards: %w", err)
	}
	for _, s := range Sets() {
		if s.Target == name {
			return s, nil
		}
	}
	return Set{}, fmt.Errorf("dashboards: target %q has no dashboards", name)
}

// Names lists the set's files, sorted: the order Export writes and
// returns them in.
func (s Set) Names() []string {
	names := append(slices.Clone(s.Dashboards), s.RulesFile)
	slices.Sort(names)
	return names
}

func lanectlSet() Set {
	return Set{
		Target:     targets.Lanectl().Name,
		Dashboards: []string{"lanes-overview.json", "lanes-rollout.json"},
		RulesFile:  LanectlRulesFile,
		SeesFlag:   true,
		rules:      lanectlRules,
		data: func(opts RuleOptions) any {
			return struct {
				SyncMode, FlagDivergedFor string
				lanectlNames
			}{opts.SyncMode.String(), FormatRuleDuration(opts.FlagDivergedFor), lanectlMetricNames()}
		},
	}
}

func elastickvSet() Set {
	return Set{
		Target:     targets.Elastickv().Name,
		Dashboards: []string{"elastickv-overview.json", "elastickv-rollout.json"},
		RulesFile:  ElastickvRulesFile,
		rules:      elastickvRules,
		data: func(opts RuleOptions) any {
			return struct {
				SyncMode string
				elastickvNames
			}{opts.SyncMode.String(), elastickvMetricNames()}
		},
	}
}

// lanectlNames are the metric names the lanectl rules template reads,
// from package targets (the template spells none itself).
type lanectlNames struct {
	Dropped, Errors, Sent, QueueWait, LanesEnabled, SyncModeMetric string
	LeaderChanges, LastContact, CommitIndex, AppliedIndex          string
}

func lanectlMetricNames() lanectlNames {
	return lanectlNames{
		Dropped:        targets.LanectlDropped,
		Errors:         targets.LanectlErrors,
		Sent:           targets.LanectlSent,
		QueueWait:      targets.LanectlQueueWait,
		LanesEnabled:   targets.LanectlLanesEnabled,
		SyncModeMetric: targets.LanectlSyncMode,
		LeaderChanges:  targets.LanectlLeaderChanges,
		LastContact:    targets.LanectlLastContact,
		CommitIndex:    targets.LanectlCommitIndex,
		AppliedIndex:   targets.LanectlAppliedIndex,
	}
}

// elastickvNames are the metric names the elastickv rules template reads,
// from package targets (the template spells none itself).
type elastickvNames struct {
	Dropped, Errors, ErrorsByCode, SendStream, StepQueueFull string
	LeaderChanges, LastContact, LocalState, LeaderIdentity   string
	CommitIndex, AppliedIndex, FSMPending, SyncModeMetric    string
}

func elastickvMetricNames() elastickvNames {
	return elastickvNames{
		Dropped:        targets.ElastickvDropped,
		Errors:         targets.ElastickvErrors,
		ErrorsByCode:   targets.ElastickvErrorsByCode,
		SendStream:     targets.ElastickvSendStream,
		StepQueueFull:  targets.ElastickvStepQueueFull,
		LeaderChanges:  targets.ElastickvLeaderChanges,
		LastContact:    targets.ElastickvLastContact,
		LocalState:     targets.ElastickvLocalState,
		LeaderIdentity: targets.ElastickvLeaderIdentity,
		CommitIndex:    targets.ElastickvCommitIndex,
		AppliedIndex:   targets.ElastickvAppliedIndex,
		FSMPending:     targets.ElastickvFSMPending,
		SyncModeMetric: targets.ElastickvSyncMode,
	}
}
