package gatetest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/lanectl/lanectl/gates"
)

// ErrBadFile is returned (wrapped, with file:line) for a test file that
// cannot be run: it does not load, or a test in it is malformed.
var ErrBadFile = errors.New("bad gates test file")

// File is one loaded test file.
type File struct {
	Path   string
	Target string
	Gates  gates.Overrides
	Series []Series
	Tests  []Test
}

// Series is one input series: a series descriptor and its values in
// promtool's expanding notation.
type Series struct {
	Series string `yaml:"series"`
	Values string `yaml:"values"`
	line   int
}

// Test is one test case of a file.
type Test struct {
	Name           string                        `yaml:"name"`
	Interval       duration                      `yaml:"interval"`
	Series         []Series                      `yaml:"input_series"`
	Window         testWindow                    `yaml:"window"`
	Now            *duration                     `yaml:"now"`
	Step           duration                      `yaml:"step"`
	Canary         []string                      `yaml:"canary"`
	Baseline       []string                      `yaml:"baseline"`
	ExpectSyncMode string                        `yaml:"expect_sync_mode"`
	Gates          gates.Overrides               `yaml:"gates"`
	External       map[string]map[string]float64 `yaml:"external"`
	Expect         Expect                        `yaml:"expect"`
	// Line is where the test starts in its file.
	Line int `yaml:"-"`
}

type testWindow struct {
	Start duration `yaml:"start"`
	End   duration `yaml:"end"`
}

// Expect is what a test expects of the soak.
type Expect struct {
	Verdict gates.Verdict         `yaml:"verdict"`
	Gates   map[string]ExpectGate `yaml:"gates"`
}

// ExpectGate is what a test expects of one gate.
type ExpectGate struct {
	Verdict gates.Verdict            `yaml:"verdict"`
	Reason  string                   `yaml:"reason"`
	Values  map[string]ExpectReplica `yaml:"values"`
}

// ExpectReplica is what a test expects of one replica under a gate.
type ExpectReplica struct {
	Verdict gates.Verdict `yaml:"verdict"`
	Value   *float64      `yaml:"value"`
	Missing bool          `yaml:"missing"`
	Reason  string        `yaml:"reason"`
}

// duration is a Prometheus duration (1m, 1h30m, 1d) in YAML.
type duration time.Duration

func (d *duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := model.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 90s, 1h or 1d", n.Line, n.Value)
	}
	*d = duration(v)
	return nil
}

type rawFile struct {
	Target string          `yaml:"target"`
	Gates  gates.Overrides `yaml:"gates"`
	Series []Series        `yaml:"input_series"`
	Tests  []Test          `yaml:"tests"`
}

var unknownField = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)

// typeNames turn decoder type names into the part of a file a person
// would look for.
var typeNames = map[string]string{
	"gatetest.Test":          "a test",
	"gatetest.Series":        "an input_series entry",
	"gatetest.testWindow":    "a window",
	"gatetest.Expect":        "expect",
	"gatetest.ExpectGate":    "an expect.gates entry",
	"gatetest.ExpectReplica": "an expect values entry",
	"gates.Override":         "a gates entry",
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// Load reads and checks a test file. Errors name the file and line.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFile, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(path, err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:1: %w: want a mapping with target, input_series and tests", path, ErrBadFile)
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return nil, yamlError(path, err)
	}
	f := &File{Path: path, Target: raw.Target, Gates: raw.Gates, Series: raw.Series, Tests: raw.Tests}
	top := root.Content[0]
	lineSeries(f.Series, child(top, "input_series"))
	if err := checkSeries(path, f.Series); err != nil {
		return nil, err
	}
	testsNode := child(top, "tests")
	if len(f.Tests) == 0 {
		return nil, fmt.Errorf("%s:%d: %w: no tests", path, lineOf(top), ErrBadFile)
	}
	for i := range f.Tests {
		t := &f.Tests[i]
		if testsNode != nil && i < len(testsNode.Content) {
			n := testsNode.Content[i]
			t.Line = n.Line
			lineSeries(t.Series, child(n, "input_series"))
		}
		if err := checkSeries(path, t.Series); err != nil {
			return nil, err
		}
		if err := t.check(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w: test %q: %w", path, t.Line, ErrBadFile, t.Name, err)
		}
	}
	return f, nil
}

func (t *Test) check() error {
	switch {
	case strings.TrimSpace(t.Name) == "":
		return errors.New("no name")
	case len(t.Canary) == 0:
		return errors.New("no canary")
	case t.Window.End <= t.Window.Start:
		return fmt.Errorf("window end %s is not after its start %s", model.Duration(t.Window.End), model.Duration(t.Window.Start))
	case t.Interval < 0 || t.Step < 0:
		return errors.New("interval and step must be positive")
	}
	if t.Interval == 0 {
		t.Interval = duration(time.Minute)
	}
	if t.Step == 0 {
		t.Step = t.Interval
	}
	check := func(v gates.Verdict, where string) error {
		switch v {
		case "", gates.Pass, gates.Fail, gates.Inconclusive:
			return nil
		}
		return fmt.Errorf("%s: verdict %q: want pass, fail or inconclusive", where, v)
	}
	if err := check(t.Expect.Verdict, "expect"); err != nil {
		return err
	}
	for g, eg := range t.Expect.Gates {
		if err := check(eg.Verdict, "expect.gates."+g); err != nil {
			return err
		}
		for r, er := range eg.Values {
			if err := check(er.Verdict, "expect.gates."+g+".values."+r); err != nil {
				return err
			}
			if er.Missing && er.Value != nil {
				return fmt.Errorf("expect.gates.%s.values.%s: missing and a value both set", g, r)
			}
		}
	}
	return nil
}

// checkSeries parses each input series with Prometheus' series parser,
// the one promqltest loads them with.
func checkSeries(path string, ss []Series) error {
	p := parser.NewParser(parser.Options{})
	for _, s := range ss {
		if strings.ContainsAny(s.Series+s.Values, "\n") {
			return fmt.Errorf("%s:%d: %w: input series: one line each for series and values", path, s.line, ErrBadFile)
		}
		if _, _, err := p.ParseSeriesDesc(s.Series + " " + s.Values); err != nil {
			return fmt.Errorf("%s:%d: %w: input series: %w", path, s.line, ErrBadFile, err)
		}
	}
	return nil
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func lineOf(n *yaml.Node) int {
	if n == nil {
		return 1
	}
	return n.Line
}

func lineSeries(ss []Series, n *yaml.Node) {
	if n == nil {
		return
	}
	for i := range ss {
		if i < len(n.Content) {
			ss[i].line = n.Content[i].Line
		}
	}
}

func yamlError(path string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	var errs []error
	for _, m := range msgs {
		line, msg := 1, strings.TrimPrefix(m, "yaml: ")
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			line, _ = strconv.Atoi(sm[1])
			msg = sm[2]
		}
		if sm := unknownField.FindStringSubmatch(msg); sm != nil {
			where := "the top level"
			if n, ok := typeNames[strings.TrimPrefix(sm[2], "*")]; ok {
				where = n
			}
			msg = fmt.Sprintf("unknown key %q in %s", sm[1], where)
		}
		errs = append(errs, fmt.Errorf("%s:%d: %w: %s", path, line, ErrBadFile, msg))
	}
	return errors.Join(errs...)
}
