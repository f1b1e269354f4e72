package rollout

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/lanectl/lanectl/gates"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

// Defaults applied by LoadPlan to keys the plan leaves out.
const (
	DefaultPlanFile       = "lanectl.yaml"
	DefaultStateFile      = "lanectl-state.json"
	DefaultFlagValue      = "1"
	DefaultSoakWindow     = 24 * time.Hour
	DefaultSoakInterval   = time.Minute
	DefaultConnectTimeout = 10 * time.Second
	DefaultCommandTimeout = 2 * time.Minute
	DefaultKnownHosts     = "~/.ssh/known_hosts"
	DefaultSSHConfig      = "~/.ssh/config"
	DefaultVerifyTimeout  = 2 * time.Minute
	DefaultVerifyInterval = time.Second
	DefaultVerifySettle   = 2
	DefaultEnvFile        = "/etc/default/elastickv"
	DefaultRestart        = "systemctl restart elastickv"
)

// Plan is a validated plan file. LoadPlan fills every default, so callers
// never see an empty field that has a default.
type Plan struct {
	// Path is the plan file as given to LoadPlan.
	Path string
	// Target is what lanectl assumes about the replicas (target: key).
	Target         targets.Target
	Prometheus     PrometheusConfig
	Flag           Flag
	ExpectSyncMode string
	Soak           SoakConfig
	SSH            SSHConfig
	// Replicas are in file order.
	Replicas []Replica
	// Stages are in rollout order.
	Stages   []Stage
	Commands Commands
	Verify   VerifyConfig
	Notify   NotifyConfig
	// ReplicaHTTP is how lanectl reaches replicas' own endpoints when a
	// replica has no http_config of its own (replica_http: key).
	ReplicaHTTP config.HTTPClientConfig
	// StatePath is the journal, resolved relative to the plan file.
	StatePath string
}

// PrometheusConfig says where soak metrics come from: a Prometheus server
// (URL plus HTTPConfig) or, with Targets, the embedded store that scrapes the
// replicas itself. Exactly one of URL and Targets is set.
type PrometheusConfig struct {
	URL        string
	HTTPConfig config.HTTPClientConfig
	Targets    []string
	// QueryTimeout bounds each query to URL (prometheus.query_timeout,
	// default query.DefaultQueryTimeout).
	QueryTimeout time.Duration
}

// Flag is the environment variable the rollout sets on each replica.
type Flag struct {
	Name  string
	Value string
}

// SoakConfig is how long and how each newly enabled replica is judged.
type SoakConfig struct {
	// Hours is the soak length as written with soak.hours; 0 when the plan
	// used soak.window instead.
	Hours float64
	// Window is the effective soak length, whichever key set it.
	Window   time.Duration
	Interval time.Duration
	// Gates are per-gate overrides keyed by gate name.
	Gates gates.Overrides
}

// SSHConfig is how lanectl reaches replicas. Paths may start with "~/";
// other relative paths are resolved against the plan file's directory.
type SSHConfig struct {
	KnownHosts string
	// IdentityFiles are tried after the ssh-agent; when empty, the usual
	// ~/.ssh/id_ed25519, id_ecdsa and id_rsa that exist are used.
	IdentityFiles []string
	// Config is an OpenSSH client config (HostName, User, Port,
	// IdentityFile are honoured).
	Config         string
	ConnectTimeout time.Duration
}

// Replica is one member of the rollout.
type Replica struct {
	Name  string
	Stage string
	// SSH is the address as written: [user@]host[:port]. Host may be an
	// alias resolved through the SSH config file.
	SSH string
	// Selector is PromQL label matchers without braces that select this
	// replica's series (default node_id="<name>").
	Selector string
	// HTTP is the replica's base URL serving /metrics (and, for the
	// lanectl target, /healthz and /status).
	HTTP string
	// HTTPConfig is how to reach HTTP (bearer token, TLS): the replica's
	// http_config, else the plan's replica_http.
	HTTPConfig config.HTTPClientConfig
}

// Stage is one step of the rollout order.
type Stage struct {
	Name string
	// MaxParallel is how many replicas of this stage one advance may enable
	// at once.
	MaxParallel int
}

// Commands are the remote commands that set and clear the flag on one
// replica, as text/template sources. Every value they substitute is
// validated at load and shell-quoted when rendered.
type Commands struct {
	Enable  string
	Disable string
	// EnvFile is the KEY=VALUE file the default commands rewrite; templates
	// see it as .EnvFile. It is a template itself, so one host can run
	// several replicas (/srv/{{.Replica.Name}}/env).
	EnvFile string
	// Restart ends the default commands; it is operator-written shell, not a
	// substituted value, so it is not quoted.
	Restart string
	// Read prints the flag's value in the running process, nothing when it
	// is unset; empty when the plan has none. It proves the flag where the
	// target's metrics cannot (see VerifyConfig.FlagProof).
	Read    string
	Timeout time.Duration
}

// VerifyConfig is how a replica proves the flag took effect (or is gone)
// after a command: the flag proof, the HTTP paths and the metrics
// conditions must all hold on Settle consecutive probes Interval apart,
// within Timeout.
type VerifyConfig struct {
	Timeout  time.Duration
	Interval time.Duration
	Settle   int
	// HTTP are paths of the replica's base URL that must answer 2xx:
	// verify.http, else the target's.
	HTTP []string
	// Metrics are conditions (see condition.go): verify.metrics, else the
	// target's.
	Metrics []string
	// Status is the target's /status-like path that must name a leader;
	// empty when the target has none.
	Status string
	// FlagProof is what the target knows about the plan's flag. When its
	// metrics cannot show the flag, Commands.Read proves it.
	FlagProof targets.FlagProof
}

// Replica returns the replica called name.
func (p *Plan) Replica(name string) (Replica, bool) {
	for _, r := range p.Replicas {
		if r.Name == name {
			return r, true
		}
	}
	return Replica{}, false
}

// Stage returns the stage called name.
func (p *Plan) Stage(name string) (Stage, bool) {
	for _, s := range p.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return Stage{}, false
}

// StageReplicas returns the replicas of one stage in file order.
func (p *Plan) StageReplicas(stage string) []Replica {
	var out []Replica
	for _, r := range p.Replicas {
		if r.Stage == stage {
			out = append(out, r)
		}
	}
	return out
}

// Order returns every replica in rollout order: stage by stage, and within
// a stage in file order.
func (p *Plan) Order() []Replica {
	out := make([]Replica, 0, len(p.Replicas))
	for _, s := range p.Stages {
		out = append(out, p.StageReplicas(s.Name)...)
	}
	return out
}

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

var (
	// Conservative on purpose: these values reach a remote shell, and the
	// names also become file names and label values.
	replicaNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	stageNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	envNameRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	flagValueRE   = regexp.MustCompile(`^[A-Za-z0-9._:/,+@%=-]*$`)
	sshUserRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9._-]{0,31}$`)
	sshHostRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)
)

// PlanError is one problem in a plan file, located at File:Line.
type PlanError struct {
	File string
	Line int
	Msg  string
}

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
	for _, step := range path {
		var next *yaml.Node
		switch s := step.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == s {
						next = n.Content[i+1]
						// A scalar value sits on its key's line; a block
						// value starts on the next one, so report the key.
						line = n.Content[i].Line
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && s < len(n.Content) {
				next = n.Content[s]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

func (l locator) errorf(path []any, format string, args ...any) error {
	return &PlanError{File: l.file, Line: l.line(path), Msg: fmt.Sprintf(format, args...)}
}

type validator struct {
	loc  locator
	errs []error
}

func (v *validator) errorf(path []any, format string, args ...any) {
	v.errs = append(v.errs, v.loc.errorf(path, format, args...))
}

func (v *validator) plan(path string, raw *rawPlan) *Plan {
	dir := filepath.Dir(path)
	p := &Plan{Path: path}
	v.target(p, raw.Target)
	v.prometheus(p, raw.Prometheus, dir)
	v.flag(p, raw.Flag)

	p.ExpectSyncMode = raw.ExpectSyncMode
	switch p.ExpectSyncMode {
	case "":
		p.ExpectSyncMode = lanes.SyncModeSync.String()
	case lanes.SyncModeSync.String(), lanes.SyncModeNoSync.String():
	default:
		v.errorf([]any{"expect_sync_mode"}, "expect_sync_mode %q: want sync or nosync", p.ExpectSyncMode)
	}

	v.soak(p, raw.Soak)
	v.ssh(p, raw.SSH, dir)
	v.stages(p, raw.Stages)
	p.ReplicaHTTP = config.DefaultHTTPClientConfig
	if raw.ReplicaHTTP != nil {
		p.ReplicaHTTP = *raw.ReplicaHTTP
	}
	p.ReplicaHTTP.SetDirectory(dir)
	v.replicas(p, raw.Replicas, dir)
	v.commands(p, raw.Commands)
	v.verify(p, raw.Verify)
	v.notify(p, raw.Notify, dir)
	v.flagProof(p, raw)

	p.StatePath = raw.State
	if p.StatePath == "" {
		p.StatePath = DefaultStateFile
	}
	p.StatePath = resolvePath(dir, p.StatePath)
	return p
}

// target resolves the target: key; the default target when it is absent.
func (v *validator) target(p *Plan, name string) {
	if name == "" {
		name = targets.Default
	}
	t, err := targets.Lookup(name)
	if err != nil {
		v.errorf([]any{"target"}, "target: %v", err)
		t, _ = targets.Lookup(targets.Default)
	}
	p.Target = t
}

// resolvePath makes a relative path relative to the plan's directory; "~/"
// paths are left for the SSH runner, which is told the home directory.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || p == "~" || strings.HasPrefix(p, "~/") {
		return p
	}
	return filepath.Join(dir, p)
}

func (v *validator) prometheus(p *Plan, raw *rawPrometheus, dir string) {
	at := []any{"prometheus"}
	if raw == nil {
		v.errorf(at, "prometheus: missing: set prometheus.url (a Prometheus server) or prometheus.targets (replica /metrics URLs for the embedded store)")
		return
	}
	p.Prometheus.URL = raw.URL
	p.Prometheus.Targets = raw.Targets
	p.Prometheus.QueryTimeout = query.DefaultQueryTimeout
	if raw.QueryTimeout != nil {
		p.Prometheus.QueryTimeout = time.Duration(*raw.QueryTimeout)
		if p.Prometheus.QueryTimeout <= 0 {
			v.errorf([]any{"prometheus", "query_timeout"}, "prometheus.query_timeout %v: want a duration > 0", p.Prometheus.QueryTimeout)
		}
	}
	switch {
	case raw.URL != "" && len(raw.Targets) > 0:
		v.errorf(at, "prometheus: set url or targets, not both")
	case raw.URL == "" && len(raw.Targets) == 0:
		v.errorf(at, "prometheus: set url (a Prometheus server) or targets (replica /metrics URLs for the embedded store)")
	case raw.URL != "":
		if err := checkHTTPURL(raw.URL); err != nil {
			v.errorf([]any{"prometheus", "url"}, "prometheus.url: %v", err)
		}
	}
	for i, t := range raw.Targets {
		if err := checkHTTPURL(t); err != nil {
			v.errorf([]any{"prometheus", "targets", i}, "prometheus.targets[%d]: %v", i, err)
		}
	}
	if raw.HTTPConfig != nil {
		p.Prometheus.HTTPConfig = *raw.HTTPConfig
	} else {
		p.Prometheus.HTTPConfig = config.DefaultHTTPClientConfig
	}
	p.Prometheus.HTTPConfig.SetDirectory(dir)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL %s: %w", query.RedactURL(s), query.URLErrorCause(err))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bad URL %s: want http://host:port or https://host:port", query.RedactURL(s))
	}
	return nil
}

func (v *validator) flag(p *Plan, raw *rawFlag) {
	p.Flag = Flag{Name: lanes.FlagEnv, Value: DefaultFlagValue}
	if raw == nil {
		return
	}
	if raw.Name != nil {
		p.Flag.Name = *raw.Name
		if !envNameRE.MatchString(p.Flag.Name) {
			v.errorf([]any{"flag", "name"}, "flag.name %q: want an environment variable name matching [A-Za-z_][A-Za-z0-9_]*", p.Flag.Name)
		}
	}
	if raw.Value != nil {
		p.Flag.Value = *raw.Value
		if err := checkFlagValue(p.Flag.Value); err != nil {
			v.errorf([]any{"flag", "value"}, "flag.value: %v", err)
		}
	}
}

// checkFlagValue refuses anything a shell could read as more than a word,
// even though rendered commands quote it as well.
func checkFlagValue(s string) error {
	switch {
	case s == "":
		return errors.New("empty: the enable command must set a value (disabling removes the variable)")
	case strings.ContainsAny(s, "\n\r\x00"):
		return fmt.Errorf("%q contains a newline or NUL", s)
	case !flagValueRE.MatchString(s):
		return fmt.Errorf("%q: only letters, digits and . _ : / , + @ %% = - are allowed in a value sent to a remote shell", s)
	}
	return nil
}

func (v *validator) soak(p *Plan, raw *rawSoak) {
	p.Soak = SoakConfig{Window: DefaultSoakWindow, Hours: DefaultSoakWindow.Hours(), Interval: DefaultSoakInterval}
	if raw == nil {
		return
	}
	switch {
	case raw.Hours != nil && raw.Window != nil:
		v.errorf([]any{"soak", "window"}, "soak: set hours or window, not both")
	case raw.Hours != nil:
		h := *raw.Hours
		if !(h > 0) || h > 24*365 {
			v.errorf([]any{"soak", "hours"}, "soak.hours %v: want a number of hours > 0", h)
		}
		p.Soak.Hours = h
		p.Soak.Window = time.Duration(h * float64(time.Hour))
	case raw.Window != nil:
		p.Soak.Hours = 0
		p.Soak.Window = time.Duration(*raw.Window)
		if p.Soak.Window <= 0 {
			v.errorf([]any{"soak", "window"}, "soak.window %v: want a duration > 0", p.Soak.Window)
		}
	}
	if raw.Interval != nil {
		p.Soak.Interval = time.Duration(*raw.Interval)
		if p.Soak.Interval <= 0 {
			v.errorf([]any{"soak", "interval"}, "soak.interval %v: want a duration > 0", p.Soak.Interval)
		}
	}
	p.Soak.Gates = raw.Gates
	v.errs = append(v.errs, checkGateOverrides(v.loc, p.Target, raw.Gates)...)
}

func (v *validator) ssh(p *Plan, raw *rawSSH, dir string) {
	p.SSH = SSHConfig{KnownHosts: DefaultKnownHosts, Config: DefaultSSHConfig, ConnectTimeout: DefaultConnectTimeout}
	if raw == nil {
		return
	}
	if raw.KnownHosts != "" {
		p.SSH.KnownHosts = raw.KnownHosts
	}
	if raw.Config != "" {
		p.SSH.Config = raw.Config
	}
	p.SSH.KnownHosts = resolvePath(dir, p.SSH.KnownHosts)
	p.SSH.Config = resolvePath(dir, p.SSH.Config)
	for i, f := range raw.IdentityFiles {
		if f == "" {
			v.errorf([]any{"ssh", "identity_files", i}, "ssh.identity_files[%d]: empty path", i)
			continue
		}
		p.SSH.IdentityFiles = append(p.SSH.IdentityFiles, resolvePath(dir, f))
	}
	if raw.ConnectTimeout != nil {
		p.SSH.ConnectTimeout = time.Duration(*raw.ConnectTimeout)
		if p.SSH.ConnectTimeout <= 0 {
			v.errorf([]any{"ssh", "connect_timeout"}, "ssh.connect_timeout %v: want a duration > 0", p.SSH.ConnectTimeout)
		}
	}
}

func (v *validator) stages(p *Plan, raw []rawStage) {
	if len(raw) == 0 {
		v.errorf([]any{"stages"}, "stages: missing: list the rollout order, e.g. [{name: staging}, {name: canary}, {name: fleet, max_parallel: 2}]")
		return
	}
	seen := map[string]int{}
	for i, s := range raw {
		at := []any{"stages", i}
		st := Stage{Name: s.Name, MaxParallel: 1}
		switch {
		case s.Name == "":
			v.errorf(at, "stages[%d]: name is missing", i)
		case !stageNameRE.MatchString(s.Name):
			v.errorf(append(at, "name"), "stages[%d]: name %q: want letters, digits, '.', '_' or '-'", i, s.Name)
		default:
			if first, dup := seen[s.Name]; dup {
				v.errorf(append(at, "name"), "stages[%d]: duplicate stage name %q (first at line %d)", i, s.Name, first)
			}
			seen[s.Name] = v.loc.line(append(at, "name"))
		}
		if s.MaxParallel != nil {
			st.MaxParallel = *s.MaxParallel
			if st.MaxParallel < 1 {
				v.errorf(append(at, "max_parallel"), "stages[%d]: max_parallel %d: want at least 1", i, st.MaxParallel)
			}
		}
		p.Stages = append(p.Stages, st)
	}
}

func (v *validator) replicas(p *Plan, raw []rawReplica, dir string) {
	if len(raw) == 0 {
		v.errorf([]any{"replicas"}, "replicas: missing: list at least one replica with name, stage, ssh and http")
		return
	}
	seen := map[string]int{}
	pp := parser.NewParser(parser.Options{})
	for i, r := range raw {
		at := []any{"replicas", i}
		field := func(k string) []any { return append(append([]any{}, at...), k) }
		who := fmt.Sprintf("replicas[%d]", i)
		if r.Name != "" {
			who += " (" + r.Name + ")"
		}
		rep := Replica{Name: r.Name, Stage: r.Stage, SSH: r.SSH, Selector: r.Selector, HTTP: strings.TrimRight(r.HTTP, "/"), HTTPConfig: p.ReplicaHTTP}
		if r.HTTPConfig != nil {
			rep.HTTPConfig = *r.HTTPConfig
			rep.HTTPConfig.SetDirectory(dir)
		}
		switch {
		case r.Name == "":
			v.errorf(at, "replicas[%d]: name is missing", i)
		case !replicaNameRE.MatchString(r.Name):
			v.errorf(field("name"), "replicas[%d]: name %q: want letters, digits, '.', '_' or '-' (at most 63, starting with a letter or digit)", i, r.Name)
		default:
			if first, dup := seen[r.Name]; dup {
				v.errorf(field("name"), "replicas[%d]: duplicate replica name %q (first at line %d)", i, r.Name, first)
			}
			seen[r.Name] = v.loc.line(field("name"))
		}
		switch {
		case r.Stage == "":
			v.errorf(at, "%s: stage is missing", who)
		default:
			if _, ok := p.Stage(r.Stage); !ok {
				v.errorf(field("stage"), "%s: unknown stage %q (stages: %s)", who, r.Stage, stageNames(p.Stages))
			}
		}
		if r.SSH == "" {
			v.errorf(at, "%s: ssh is missing: want [user@]host[:port]", who)
		} else if _, err := ParseSSHAddress(r.SSH); err != nil {
			v.errorf(field("ssh"), "%s: ssh: %v", who, err)
		}
		if rep.Selector == "" {
			rep.Selector = fmt.Sprintf("%s=%q", p.Target.ReplicaLabel, r.Name)
		} else if _, err := pp.ParseMetricSelector("{" + rep.Selector + "}"); err != nil {
			v.errorf(field("selector"), "%s: selector %q does not parse as PromQL label matchers: %s", who, rep.Selector, selectorError(err))
		}
		if r.HTTP == "" {
			v.errorf(at, "%s: http is missing: the replica's base URL, serving /metrics", who)
		} else if err := checkHTTPURL(r.HTTP); err != nil {
			v.errorf(field("http"), "%s: http: %v", who, err)
		}
		p.Replicas = append(p.Replicas, rep)
	}
}

// selectorError points at the column of the selector as written: the
// parser saw it wrapped in braces, one character to the right.
func selectorError(err error) string {
	var pe parser.ParseErrors
	if errors.As(err, &pe) && len(pe) > 0 {
		return fmt.Sprintf("column %d: %v", max(int(pe[0].PositionRange.Start), 1), pe[0].Err)
	}
	return err.Error()
}

func stageNames(stages []Stage) string {
	names := make([]string, 0, len(stages))
	for _, s := range stages {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// SSHAddress is a parsed [user@]host[:port]; User and Port are empty when
// not written, so the SSH config file can supply them.
type SSHAddress struct {
	User string
	Host string
	Port string
}

// ParseSSHAddress parses [user@]host[:port]. IPv6 hosts need brackets when a
// port is given.
func ParseSSHAddress(s string) (SSHAddress, error) {
	var a SSHAddress
	hostport := s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		a.User, hostport = s[:i], s[i+1:]
		if !sshUserRE.MatchString(a.User) {
			return a, fmt.Errorf("%q: bad user name %q", s, a.User)
		}
	}
	a.Host = hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		a.Host, a.Port = h, port
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return a, fmt.Errorf("%q: bad port %q", s, port)
		}
	} else if strings.Count(hostport, ":") == 1 {
		return a, fmt.Errorf("%q: %v", s, err)
	}
	if net.ParseIP(a.Host) == nil && !sshHostRE.MatchString(a.Host) {
		return a, fmt.Errorf("%q: bad host %q", s, a.Host)
	}
	return a, nil
}

func (v *validator) commands(p *Plan, raw *rawCommands) {
	c := Commands{EnvFile: DefaultEnvFile, Restart: DefaultRestart, Timeout: DefaultCommandTimeout}
	if raw == nil {
		raw = &rawCommands{}
	}
	if raw.EnvFile != "" {
		c.EnvFile = raw.EnvFile
	}
	if raw.Restart != "" {
		c.Restart = raw.Restart
	}
	if strings.ContainsAny(c.EnvFile, "\n\r\x00") || !filepath.IsAbs(c.EnvFile) {
		v.errorf([]any{"commands", "env_file"}, "commands.env_file %q: want an absolute path on the replica host", c.EnvFile)
	}
	if strings.ContainsAny(c.Restart, "\n\r\x00") {
		v.errorf([]any{"commands", "restart"}, "commands.restart: must be one line")
	}
	c.Enable, c.Disable, c.Read = raw.Enable, raw.Disable, raw.Read
	if c.Enable == "" {
		c.Enable = defaultEnableCommand + " && " + c.Restart
	}
	if c.Disable == "" {
		c.Disable = defaultDisableCommand + " && " + c.Restart
	}
	if raw.Timeout != nil {
		c.Timeout = time.Duration(*raw.Timeout)
		if c.Timeout <= 0 {
			v.errorf([]any{"commands", "timeout"}, "commands.timeout %v: want a duration > 0", c.Timeout)
		}
	}
	p.Commands = c
	// Render once against the plan's own values so a template that does not
	// parse or names an unknown field fails at load, not half-way through a
	// rollout.
	sample := Replica{Name: "replica", Stage: "stage"}
	if len(p.Replicas) > 0 {
		sample = p.Replicas[0]
	}
	for _, k := range []struct {
		key, src string
	}{{"env_file", "{{.EnvFile}}"}, {"enable", c.Enable}, {"disable", c.Disable}, {"read", c.Read}} {
		if k.key == "read" && k.src == "" {
			continue
		}
		if _, err := renderCommand(k.key, k.src, p.Flag, c.EnvFile, sample); err != nil {
			v.errorf([]any{"commands", k.key}, "commands.%s: %v", k.key, err)
		}
	}
}

func (v *validator) verify(p *Plan, raw *rawVerify) {
	t := p.Target.Verify
	p.Verify = VerifyConfig{
		Timeout: DefaultVerifyTimeout, Interval: DefaultVerifyInterval, Settle: DefaultVerifySettle,
		HTTP: t.HTTP, Metrics: t.Metrics, Status: t.Status,
	}
	p.Verify.FlagProof, _ = p.Target.FlagProof(p.Flag.Name)
	if raw == nil {
		return
	}
	v.verifyChecks(p, raw)
	if raw.Timeout != nil {
		p.Verify.Timeout = time.Duration(*raw.Timeout)
		if p.Verify.Timeout <= 0 {
			v.errorf([]any{"verify", "timeout"}, "verify.timeout %v: want a duration > 0", p.Verify.Timeout)
		}
	}
	if raw.Interval != nil {
		p.Verify.Interval = time.Duration(*raw.Interval)
		if p.Verify.Interval <= 0 {
			v.errorf([]any{"verify", "interval"}, "verify.interval %v: want a duration > 0", p.Verify.Interval)
		}
	}
	if raw.Settle != nil {
		p.Verify.Settle = *raw.Settle
		if p.Verify.Settle < 1 || p.Verify.Settle > 100 {
			v.errorf([]any{"verify", "settle"}, "verify.settle %d: want 1 to 100 consecutive good probes", p.Verify.Settle)
		}
	}
}
