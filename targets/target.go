package targets

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/lanectl/lanectl/gates"
)

// Target is everything lanectl assumes about one kind of system it rolls
// out. Code outside this package asks a Target; it never names a metric of
// its own.
type Target struct {
	// Name is how a plan's target: key and --target name it.
	Name string
	// Summary is one line for --help and the README.
	Summary string
	// ReplicaLabel is the label whose value names a replica in every
	// series, and the default selector's label: <label>="<replica name>".
	ReplicaLabel string
	// PresenceMetric is a series every replica exports at every scrape; a
	// replica with a sample of it "reported", so a counter it never
	// created reads as zero rather than as missing.
	PresenceMetric string
	// Gates returns a fresh copy of the target's gate set, in table order.
	Gates func() gates.Set
	// Blind says, one sentence each, what this target's metrics cannot
	// show; gate tables and soak --list-gates print it.
	Blind []string
	// FlagProofs are the flags whose running value the target's own
	// metrics show. A flag without one is proven by the plan's read
	// command.
	FlagProofs []FlagProof
	// Verify is what a replica must show, on top of the flag proof, before
	// a command counts as done.
	Verify Verify
	// Drops is how status breaks a replica's drops down.
	Drops Breakdown
}

// FlagProof is what a target knows about one flag: how the replica parses
// its value and, where its metrics show it, the PromQL that proves it.
type FlagProof struct {
	// Flag is the environment variable.
	Flag string
	// Parse turns a value as the plan writes it, or as a read command
	// prints it ("" when unset), into the value the replica runs with,
	// parsed the way the replica parses it; the warning is non-empty when
	// the replica would fall back to a default.
	Parse func(value string) (running string, warning string)
	// Holds is a PromQL template over one replica's series ({{sel}} and
	// {{.Value}}, the parsed value): its result is non-empty exactly when
	// the replica runs with that value. Empty when the target's metrics
	// cannot show the flag: the plan's read command proves it, and Parse
	// reads what it prints.
	Holds string
	// Gauge, when set, is a 0/1 gauge of the flag: its max over a window
	// is 0 exactly for a replica that ran without the flag throughout, so
	// a soak without a plan can find its baselines.
	Gauge string
}

// Verify lists the conditions a healthy, caught-up replica meets. A plan's
// verify.http and verify.metrics replace HTTP and Metrics; Status stays.
type Verify struct {
	// HTTP paths that must answer 2xx.
	HTTP []string
	// Metrics are PromQL templates ({{sel}}: the verified replica's
	// selector) evaluated over one fresh scrape of every replica of the
	// plan; a non-empty result means the condition holds.
	Metrics []string
	// Status, when set, is a path answering JSON with leader or
	// leader_raft_id, which must name a leader. Empty for a target whose
	// listener serves nothing but metrics.
	Status string
}

// Breakdown names the counter status sums and the label it splits by.
type Breakdown struct {
	Metric string
	Label  string
}

// Default is the target of a plan without a target: key.
const Default = "lanectl"

// ErrUnknownTarget is returned by Lookup for a name that is not a built-in
// target.
var ErrUnknownTarget = errors.New("unknown target")

// builtins are the targets lanectl knows, in the order Names lists them.
func builtins() []Target {
	return []Target{Lanectl(), Elastickv()}
}

// Lookup returns the built-in target called name.
func Lookup(name string) (Target, error) {
	for _, t := range builtins() {
		if t.Name == name {
			return t, nil
		}
	}
	return Target{}, fmt.Errorf("%w %q (known targets: %s)", ErrUnknownTarget, name, strings.Join(Names(), ", "))
}

// Names lists the built-in targets.
func Names() []string {
	var out []string
	for _, t := range builtins() {
		out = append(out, t.Name)
	}
	return slices.Clip(out)
}
