package dashboards

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"
	"time"

	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/lanes"
)

// The rules file is rendered from this template; the shipped lanes.rules.yml
// is its rendering with DefaultRuleOptions (go generate ./dashboards). The
// delimiters are [[ ]] because the alert annotations use Prometheus' own
// {{ }} templates.
//
//go:embed lanes.rules.yml.tmpl
var rulesTemplate string

var rulesTmpl = template.Must(template.New(RulesFile).Delims("[[", "]]").Option("missingkey=error").Parse(rulesTemplate))

// RuleOptions are the values of the rules that depend on a rollout.
type RuleOptions struct {
	// SyncMode is the FSM sync mode LanectlSyncModeUnexpected expects of
	// every replica.
	SyncMode lanes.SyncMode
	// FlagDivergedFor is how long the flag may differ across replicas
	// before LanectlFlagStateDiverged fires: a soak stage plus the time an
	// advance takes.
	FlagDivergedFor model.Duration
}

// DefaultRuleOptions are what the shipped lanes.rules.yml was rendered
// with: sync mode, and 26h (one 24h soak stage plus slack).
func DefaultRuleOptions() RuleOptions {
	return RuleOptions{SyncMode: lanes.SyncModeSync, FlagDivergedFor: model.Duration(26 * time.Hour)}
}

// Rules renders lanes.rules.yml for opts.
func Rules(opts RuleOptions) ([]byte, error) {
	if opts.SyncMode != lanes.SyncModeSync && opts.SyncMode != lanes.SyncModeNoSync {
		return nil, fmt.Errorf("render %s: unknown sync mode %d", RulesFile, opts.SyncMode)
	}
	if opts.FlagDivergedFor <= 0 {
		return nil, fmt.Errorf("render %s: flag-diverged-for %v must be positive", RulesFile, opts.FlagDivergedFor)
	}
	var buf bytes.Buffer
	err := rulesTmpl.Execute(&buf, struct{ SyncMode, FlagDivergedFor string }{
		SyncMode:        opts.SyncMode.String(),
		FlagDivergedFor: FormatRuleDuration(opts.FlagDivergedFor),
	})
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", RulesFile, err)
	}
	return buf.Bytes(), nil
}

// FormatRuleDuration writes d in its largest whole unit up to hours ("26h",
// not model.Duration's "1d2h"), as people write a rule's for.
func FormatRuleDuration(md model.Duration) string {
	d := time.Duration(md)
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	}
}
