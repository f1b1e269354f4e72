package rollout

import (
	"time"

	"github.com/prometheus/common/config"

	"github.com/lanectl/lanectl/gates"
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
