package targets

import (
	"strconv"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
)

// Lanectl is the target of lanectl's own replica: per-lane dispatch
// counters, the lanes gauge, /healthz and /status.
func Lanectl() Target {
	return Target{
		Name:           "lanectl",
		Summary:        "lanectl's replica (node/replica) or any engine exporting node's metrics: per-lane counters, the lanes gauge, /healthz and /status",
		ReplicaLabel:   gates.DefaultReplicaLabel,
		PresenceMetric: LanectlLanesEnabled,
		Gates:          lanectlGates,
		FlagProofs: []FlagProof{
			lanesFlagProof(LanectlLanesEnabled+`{{sel}} == {{if eq .Value "true"}}1{{else}}0{{end}}`, LanectlLanesEnabled),
			syncModeProof(),
		},
		Verify: Verify{
			HTTP:    []string{"/healthz"},
			Metrics: []string{LanectlLanesEnabled + "{{sel}}"},
			Status:  "/status",
		},
		Drops: Breakdown{Metric: LanectlDropped, Label: "lane"},
	}
}

// lanesFlagProof parses the lanes flag as node's dispatcher does:
// strconv.ParseBool after TrimSpace, anything unparsable is false.
func lanesFlagProof(holds, gauge string) FlagProof {
	return FlagProof{
		Flag: lanes.FlagEnv,
		Parse: func(v string) (string, string) {
			on, warning := lanes.ParseLanesFlag(v)
			return strconv.FormatBool(on), warning
		},
		Holds: holds,
		Gauge: gauge,
	}
}

// syncModeProof proves ELASTICKV_FSM_SYNC_MODE from the sync-mode gauge,
// which both targets export.
func syncModeProof() FlagProof {
	return FlagProof{
		Flag: lanes.SyncModeEnv,
		Parse: func(v string) (string, string) {
			m, warning := lanes.ParseSyncMode(v)
			return m.String(), warning
		},
		Holds: LanectlSyncMode + `{{sel (printf "mode=%q" .Value)}} == 1`,
	}
}
