package dashboards

import (
	"bytes"
	_ "embed"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/lanes"
)

// The rules files are rendered from these templates; the shipped
// lanes.rules.yml and elastickv.rules.yml are their renderings with
// DefaultRuleOptions (go generate ./dashboards). The delimiters are [[ ]]
// because the alert annotations use Prometheus' own {{ }} templates. The
// templates take their metric names as data from package targets and spell
// none themselves; base trims a counter's _total for the names of
// recording rules.
var (
	//go:embed lanes.rules.yml.tmpl
	lanectlRulesTemplate string
	//go:embed elastickv.rules.yml.tmpl
	elastickvRulesTemplate string

	lanectlRules   = parseRules(LanectlRulesFile, lanectlRulesTemplate)
	elastickvRules = parseRules(ElastickvRulesFile, elastickvRulesTemplate)
)

func parseRules(name, text string) *template.Template {
	funcs := template.FuncMap{"base": func(counter string) string { return strings.TrimSuffix(counter, "_total") }}
	return template.Must(template.New(name).Delims("[[", "]]").Option("missingkey=error").Funcs(funcs).Parse(text))
}

// RuleOptions are the values of the rules that depend on a rollout.
type RuleOptions struct {
	// SyncMode is the FSM sync mode LanectlSyncModeUnexpected and
	// ElastickvSyncModeUnexpected expect of every replica.
	SyncMode lanes.SyncMode
	// FlagDivergedFor is how long the flag may differ across replicas
	// before LanectlFlagStateDiverged fires: a soak stage plus the time an
	// advance takes. Only a set that SeesFlag reads it.
	FlagDivergedFor model.Duration
}

// DefaultRuleOptions are what the shipped rules files were rendered with:
// sync mode, and 26h (one 24h soak stage plus slack).
func DefaultRuleOptions() RuleOptions {
	return RuleOptions{SyncMode: lanes.SyncModeSync, FlagDivergedFor: model.Duration(26 * time.Hour)}
}

// Rules renders the set's rules file for opts. FlagDivergedFor must be
// positive even for a set that does not read it, so one RuleOptions is
// valid for every set.
func (s Set) Rules(opts RuleOptions) ([]byte, error) {
	if opts.SyncMode != lanes.SyncModeSync && opts.SyncMode != lanes.SyncModeNoSync {
		return nil, fmt.Errorf("render %s: unknown sync mode %d", s.RulesFile, opts.SyncMode)
	}
	if opts.FlagDivergedFor <= 0 {
		return nil, fmt.Errorf("render %s: flag-diverged-for %v must be positive", s.RulesFile, opts.FlagDivergedFor)
	}
	var buf bytes.Buffer
	if err := s.rules.Execute(&buf, s.data(opts)); err != nil {
		return nil, fmt.Errorf("render %s: %w", s.RulesFile, err)
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
