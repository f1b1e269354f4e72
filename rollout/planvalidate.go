package rollout

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/common/config"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/query"
	"github.com/lanectl/lanectl/targets"
)

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
