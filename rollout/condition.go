package rollout

import (
	"fmt"
	"strings"
	"text/template"

	"github.com/lanectl/lanectl/query"
)

// A condition is a PromQL template judged over one fresh scrape of every
// replica of the plan: a verify.metrics entry, a target's default, or a
// target's flag proof. The template sees
//
//	{{sel}}               {<the verified replica's matchers>}
//	{{sel `state="x"`}}   {state="x", <the verified replica's matchers>}
//	{{.Value}}            for a flag proof: the running value it proves
//
// and a series written without {{sel}} reads every replica in the
// scrape. A non-empty result means the condition holds.

// conditionData is what a condition template sees.
type conditionData struct {
	Value    string
	selector string
}

func (d conditionData) sel(extra ...string) string { return query.Selector(d.selector, extra...) }

// renderCondition renders a condition for the replica selected by selector.
func renderCondition(src, selector, value string) (string, error) {
	d := conditionData{Value: value, selector: selector}
	t, err := template.New("condition").Funcs(template.FuncMap{"sel": d.sel}).Option("missingkey=error").Parse(src)
	if err != nil {
		return "", fmt.Errorf("parse template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", fmt.Errorf("render template: %w", err)
	}
	return b.String(), nil
}

// checkCondition renders src for a sample replica and parses the result as
// PromQL, so a condition that cannot run fails when the plan loads.
func checkCondition(src, selector, value string) error {
	expr, err := renderCondition(src, selector, value)
	if err != nil {
		return err
	}
	if err := query.CheckExpr(expr); err != nil {
		return fmt.Errorf("rendered as %q: %w", expr, err)
	}
	return nil
}
