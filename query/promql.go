package query

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
)

// promqlParser is stateless and safe for concurrent use.
var promqlParser = parser.NewParser(parser.Options{})

// CheckExpr parses expr as PromQL without evaluating it. The error, wrapping
// ErrBadQuery, gives the line:column of the problem and repeats the
// offending line with a caret under it.
func CheckExpr(expr string) error {
	_, err := promqlParser.ParseExpr(expr)
	if err == nil {
		return nil
	}
	var perrs parser.ParseErrors
	var perr *parser.ParseErr
	var first *parser.ParseErr
	switch {
	case errors.As(err, &perrs) && len(perrs) > 0:
		first = &perrs[0]
	case errors.As(err, &perr):
		first = perr
	default:
		return fmt.Errorf("%w: %w", ErrBadQuery, err)
	}
	return fmt.Errorf("%w: %w\n%s", ErrBadQuery, err, caret(expr, int(first.PositionRange.Start)))
}

// caret shows the line of expr holding byte offset pos with a ^ under it.
func caret(expr string, pos int) string {
	if pos < 0 || pos > len(expr) {
		return ""
	}
	lineStart := strings.LastIndexByte(expr[:pos], '\n') + 1
	lineEnd := len(expr)
	if i := strings.IndexByte(expr[pos:], '\n'); i >= 0 {
		lineEnd = pos + i
	}
	return "  " + expr[lineStart:lineEnd] + "\n  " + strings.Repeat(" ", pos-lineStart) + "^"
}

// Matcher is one label matcher of a selector, e.g. node_id="n2".
type Matcher struct {
	Name  string
	Op    string // =, !=, =~ or !~
	Value string
}

// String renders the matcher as PromQL, quoting the value, and the name
// where LabelName says it must be.
func (m Matcher) String() string { return LabelName(m.Name) + m.Op + strconv.Quote(m.Value) }

// LabelName renders a label name for a place PromQL expects one: in a
// selector, by (...), on (...). A name outside [a-zA-Z_][a-zA-Z0-9_]* (a
// dotted OpenTelemetry name such as service.name, or anything else UTF-8)
// is written as a quoted string, as Prometheus 3 prints it, so it stays
// one label name whatever characters it holds and cannot change the
// structure of the query around it. Servers older than Prometheus 3 reject
// quoted names with a parse error.
func LabelName(name string) string {
	if model.LegacyValidation.IsValidLabelName(name) {
		return name
	}
	return strconv.Quote(name)
}

// ParseMatchers parses label matchers written without braces, as a plan
// file's replica selector is: `node_id="n2"` or `job="kv", instance="a:9101"`.
func ParseMatchers(s string) ([]Matcher, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty selector", ErrBadQuery)
	}
	ms, err := promqlParser.ParseMetricSelector("{" + s + "}")
	if err != nil {
		return nil, fmt.Errorf("%w: selector %q: %w", ErrBadQuery, s, err)
	}
	out := make([]Matcher, 0, len(ms))
	for _, m := range ms {
		out = append(out, Matcher{Name: m.Name, Op: m.Type.String(), Value: m.Value})
	}
	return out, nil
}

// Selector is what a gate or verify template's {{sel}} renders to: the
// extra matchers, trimmed and in order, then the matchers that pick the
// replicas (replica, empty for every replica), all in one pair of braces.
func Selector(replica string, extra ...string) string {
	var parts []string
	for _, e := range extra {
		if e = strings.TrimSpace(e); e != "" {
			parts = append(parts, e)
		}
	}
	if replica != "" {
		parts = append(parts, replica)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
