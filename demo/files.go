package demo

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/rollout"
)

// Stages in rollout order, one replica each: n1, n2, n3.
var stages = []string{"staging", "canary", "fleet"}

// envFileName is each replica's env file in the demo directory, the
// stand-in for /etc/default/elastickv on a host.
func envFileName(replica string) string { return replica + ".env" }

// writeEnvFile writes a replica's starting environment: sync mode set, the
// lanes flag absent (the legacy layout), as an operator's file would be
// before the rollout.
func writeEnvFile(path, replica string) error {
	body := fmt.Sprintf("# environment of replica %s, read at every (re)start as a service's EnvironmentFile would be\n%s=%s\n",
		replica, lanes.SyncModeEnv, lanes.SyncModeSync)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	return nil
}

// envFile is a parsed KEY=VALUE file.
type envFile map[string]string

func (e envFile) get(key string) string { return e[key] }

// readEnvFile reads KEY=VALUE lines as systemd's EnvironmentFile does in
// its simple form: blank lines and lines starting with # are skipped, one
// pair of surrounding quotes is removed from a value.
func readEnvFile(path string) (envFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read env file: %w", err)
	}
	defer f.Close()
	env := envFile{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%s:%d: want KEY=VALUE, got %q", path, n, line)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return env, nil
}

// planInput is what the plan file is written from.
type planInput struct {
	Dir      string
	Names    []string
	HTTP     []string
	Timing   Timing
	Verify   time.Duration
	Restart  string
	Commands time.Duration
}

// writePlan writes the demo's plan file into dir and returns its path. It
// is an ordinary plan, loaded with rollout.LoadPlan like any other; only the
// restart command differs, because the restart happens in-process.
func writePlan(in planInput) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by 'lanectl demo' for its in-process cluster. A plan for a real\n")
	fmt.Fprintf(&b, "# cluster has the same keys: see the README section on the plan file.\n")
	fmt.Fprintf(&b, "prometheus:\n  # the embedded store scrapes these; a real plan usually sets url:\n  targets:\n")
	for _, u := range in.HTTP {
		fmt.Fprintf(&b, "    - %s/metrics\n", u)
	}
	fmt.Fprintf(&b, "flag:\n  name: %s\n  value: %q\n", lanes.FlagEnv, rollout.DefaultFlagValue)
	fmt.Fprintf(&b, "expect_sync_mode: %s\n", lanes.SyncModeSync)
	fmt.Fprintf(&b, "soak:\n  window: %s\n  interval: %s\n  gates: {}\n", in.Timing.Soak, in.Timing.Step)
	fmt.Fprintf(&b, "replicas:\n")
	for i, n := range in.Names {
		// ssh is required by the plan format; the demo's runner never
		// dials it.
		fmt.Fprintf(&b, "  - name: %s\n    stage: %s\n    ssh: localhost\n    selector: 'node_id=%q'\n    http: %s\n", n, stages[i], n, in.HTTP[i])
	}
	fmt.Fprintf(&b, "stages:\n")
	for _, s := range stages {
		fmt.Fprintf(&b, "  - {name: %s, max_parallel: 1}\n", s)
	}
	fmt.Fprintf(&b, "commands:\n  env_file: %q\n  restart: %q\n  timeout: %s\n",
		filepath.Join(in.Dir, envFileName("{{.Replica.Name}}")), in.Restart, in.Commands)
	fmt.Fprintf(&b, "verify:\n  timeout: %s\n  interval: 200ms\n  settle: 2\n", in.Verify)
	fmt.Fprintf(&b, "state: lanectl-state.json\n")
	path := filepath.Join(in.Dir, rollout.DefaultPlanFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write plan: %w", err)
	}
	return path, nil
}
