package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/lanectl/lanectl/gates"
)

// The raw types mirror the file; LoadPlan decodes into them strictly and then
// validates and fills defaults into a Plan.
type rawPlan struct {
	Target         string                   `yaml:"target"`
	Prometheus     *rawPrometheus           `yaml:"prometheus"`
	Flag           *rawFlag                 `yaml:"flag"`
	ExpectSyncMode string                   `yaml:"expect_sync_mode"`
	Soak           *rawSoak                 `yaml:"soak"`
	SSH            *rawSSH                  `yaml:"ssh"`
	Replicas       []rawReplica             `yaml:"replicas"`
	Stages         []rawStage               `yaml:"stages"`
	Commands       *rawCommands             `yaml:"commands"`
	Verify         *rawVerify               `yaml:"verify"`
	ReplicaHTTP    *config.HTTPClientConfig `yaml:"replica_http"`
	Notify         *rawNotify               `yaml:"notify"`
	State          string                   `yaml:"state"`
}

type rawPrometheus struct {
	URL          string                   `yaml:"url"`
	HTTPConfig   *config.HTTPClientConfig `yaml:"http_config"`
	Targets      []string                 `yaml:"targets"`
	QueryTimeout *yamlDuration            `yaml:"query_timeout"`
}

type rawFlag struct {
	Name  *string `yaml:"name"`
	Value *string `yaml:"value"`
}

type rawSoak struct {
	Hours    *float64        `yaml:"hours"`
	Window   *yamlDuration   `yaml:"window"`
	Interval *yamlDuration   `yaml:"interval"`
	Gates    gates.Overrides `yaml:"gates"`
}

type rawSSH struct {
	KnownHosts     string        `yaml:"known_hosts"`
	IdentityFiles  []string      `yaml:"identity_files"`
	Config         string        `yaml:"config"`
	ConnectTimeout *yamlDuration `yaml:"connect_timeout"`
}

type rawVerify struct {
	Timeout  *yamlDuration `yaml:"timeout"`
	Interval *yamlDuration `yaml:"interval"`
	Settle   *int          `yaml:"settle"`
	Metrics  []string      `yaml:"metrics"`
	HTTP     []string      `yaml:"http"`
}

type rawReplica struct {
	Name       string                   `yaml:"name"`
	Stage      string                   `yaml:"stage"`
	SSH        string                   `yaml:"ssh"`
	Selector   string                   `yaml:"selector"`
	HTTP       string                   `yaml:"http"`
	HTTPConfig *config.HTTPClientConfig `yaml:"http_config"`
}

type rawStage struct {
	Name        string `yaml:"name"`
	MaxParallel *int   `yaml:"max_parallel"`
}

type rawCommands struct {
	Enable  string        `yaml:"enable"`
	Disable string        `yaml:"disable"`
	EnvFile string        `yaml:"env_file"`
	Restart string        `yaml:"restart"`
	Read    string        `yaml:"read"`
	Timeout *yamlDuration `yaml:"timeout"`
}

// yamlDuration accepts Go ("1h30m", "1.5h") and Prometheus ("1d", "90s")
// duration strings. A bare number is refused: "window: 90" would otherwise
// silently mean 90 nanoseconds.
type yamlDuration time.Duration

func (d *yamlDuration) UnmarshalYAML(n *yaml.Node) error {
	bad := func(why string) error {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %s", n.Line, why)}}
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!int" || n.Tag == "!!float" {
		return bad(fmt.Sprintf("duration %q needs a unit, e.g. 90s, 10m, 24h", n.Value))
	}
	v, err := parseDuration(n.Value)
	if err != nil {
		return bad(err.Error())
	}
	*d = yamlDuration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if v, err := time.ParseDuration(s); err == nil {
		return v, nil
	}
	v, err := model.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q: want e.g. 90s, 10m, 1h30m, 1d", s)
	}
	return time.Duration(v), nil
}

// PlanError is one problem in a plan file, located at File:Line.
type PlanError struct {
	File string
	Line int
	Msg  string
}

// Error is "file:line: message", or "file: message" without a line.
func (e *PlanError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// LoadPlan reads and validates the plan at path. Unknown keys, wrong types,
// missing fields, duplicate names, unknown stages and selectors or commands
// that do not parse are all reported, each as a *PlanError with file:line,
// joined into one error.
func LoadPlan(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlErrors(path, err, nil)
	}
	if len(root.Content) == 0 {
		return nil, &PlanError{File: path, Line: 1, Msg: "plan is empty"}
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return nil, &PlanError{File: path, Line: root.Content[0].Line, Msg: "plan must be a mapping of keys (prometheus, replicas, stages, ...)"}
	}
	var raw rawPlan
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return nil, yamlErrors(path, err, root.Content[0])
		}
		// A custom unmarshaler outside this package (an HTTP client
		// config) failed validation; it knows no line, so point at its
		// block.
		return nil, httpConfigError(locator{file: path, root: root.Content[0]}, err)
	}
	v := &validator{loc: locator{file: path, root: root.Content[0]}}
	p := v.plan(path, &raw)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return p, nil
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// rawTypeNames turns decoder type names into the plan section a person
// would look for.
var rawTypeNames = map[string]string{
	"rollout.rawPlan":         "the top level",
	"rollout.rawPrometheus":   "prometheus",
	"rollout.rawFlag":         "flag",
	"rollout.rawSoak":         "soak",
	"rollout.rawSSH":          "ssh",
	"rollout.rawReplica":      "a replicas entry",
	"rollout.rawStage":        "a stages entry",
	"rollout.rawCommands":     "commands",
	"rollout.rawVerify":       "verify",
	"rollout.rawNotify":       "notify",
	"rollout.rawReceiver":     "a notify.alertmanager or notify.webhook entry",
	"config.HTTPClientConfig": "an HTTP client config (prometheus.http_config, replica_http, a replica's or a notify receiver's http_config)",
	"config.plain":            "an HTTP client config (prometheus.http_config, replica_http, a replica's or a notify receiver's http_config)",
	"gates.Override":          "a soak.gates entry",
}

var unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)

// yamlErrors rewrites the decoder's "line N: ..." messages as file:line
// errors. With the document's root, an error inside an HTTP client config
// names the block it is in.
func yamlErrors(file string, err error, root *yaml.Node) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		pe := &PlanError{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLineRE.FindStringSubmatch(m); sm != nil {
			pe.Line, _ = strconv.Atoi(sm[1])
			pe.Msg = sm[2]
		}
		if sm := unknownFieldRE.FindStringSubmatch(pe.Msg); sm != nil {
			where := sm[2]
			if n, ok := rawTypeNames[strings.TrimPrefix(where, "*")]; ok {
				where = n
			}
			if b := httpConfigBlock(root, pe.Line); b != "" && strings.HasPrefix(where, "an HTTP client config") {
				where = b
			}
			pe.Msg = fmt.Sprintf("unknown key %q in %s", sm[1], where)
		}
		errs = append(errs, pe)
	}
	return errors.Join(errs...)
}

// locator finds the line of a key path ("replicas", 2, "name") in the parsed
// document, falling back to the nearest enclosing node that exists.
type locator struct {
	file string
	root *yaml.Node
}

func (l locator) line(path []any) int {
	n := l.root
	line := n.Line
	for _, s := range path {
		next, at := child(n, s)
		if next == nil {
			return line
		}
		n, line = next, at
	}
	return line
}

// child is n's value at one step of a key path (a key of a mapping, an
// index of a sequence), and the line to report for it: a key's own line,
// because a scalar value sits on its key's line and a block value starts on
// the next one, or an element's. It is nil when n has no such child.
func child(n *yaml.Node, step any) (*yaml.Node, int) {
	switch s := step.(type) {
	case string:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == s {
					return n.Content[i+1], n.Content[i].Line
				}
			}
		}
	case int:
		if n.Kind == yaml.SequenceNode && s >= 0 && s < len(n.Content) {
			return n.Content[s], n.Content[s].Line
		}
	}
	return nil, 0
}

func (l locator) errorf(path []any, format string, args ...any) error {
	return &PlanError{File: l.file, Line: l.line(path), Msg: fmt.Sprintf(format, args...)}
}
