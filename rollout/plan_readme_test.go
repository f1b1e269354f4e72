package rollout

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The README's docker read command, escaped from lanectl's template, comes
// out as the docker template docker needs, and run against a stand-in
// docker that answers only to that template, prints the flag's value.
func TestReadmeDockerReadCommand(t *testing.T) {
	for _, tt := range []struct{ plan, want string }{
		{"testdata/plans/readme-elastickv-docker.good.yml", "1"},
		{"testdata/plans/readme-gomemlimit.good.yml", "6GiB"},
	} {
		p, err := LoadPlan(tt.plan)
		if err != nil {
			t.Fatal(err)
		}
		cmd, ok, err := p.ReadCommand(p.Replicas[0])
		if err != nil || !ok {
			t.Fatalf("%s: read command: %v, %v", tt.plan, ok, err)
		}
		want := `docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' elastickv | sed -n 's/^` + p.Flag.Name + `=//p'`
		if cmd != want {
			t.Errorf("%s: read renders as\n%s\nwant\n%s", tt.plan, cmd, want)
		}
		bin := t.TempDir()
		docker := `#!/bin/sh
[ "$1 $2 $3 $4" = 'inspect -f {{range .Config.Env}}{{println .}}{{end}} elastickv' ] || { echo "unexpected: $*" >&2; exit 2; }
printf 'PATH=/usr/bin\nELASTICKV_RAFT_DISPATCHER_LANES=1\nGOMEMLIMIT=6GiB\nHOME=/\n'
`
		if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(docker), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := LocalRunner{Timeout: 5 * time.Second, Env: []string{"PATH=" + bin + ":/usr/bin:/bin"}}.Run(t.Context(), p.Replicas[0], cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.plan, err)
		}
		if got := out.Stdout; got != tt.want+"\n" {
			t.Errorf("%s: read printed %q, want %q", tt.plan, got, tt.want+"\n")
		}
	}
}

// The README's plans load, and prove their flags as the README says.
func TestReadmePlans(t *testing.T) {
	tests := []struct {
		plan        string
		fromMetrics bool
	}{
		{"testdata/plans/readme-elastickv-docker.good.yml", false},
		{"testdata/plans/readme-elastickv-systemd.good.yml", false},
		{"testdata/plans/readme-nosync.good.yml", true},
		{"testdata/plans/readme-gomemlimit.good.yml", false},
	}
	for _, tt := range tests {
		p, err := LoadPlan(tt.plan)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Verify.FlagProof.FromMetrics(); got != tt.fromMetrics {
			t.Errorf("%s: flag %s proven by metrics = %v, want %v", tt.plan, p.Flag.Name, got, tt.fromMetrics)
		}
		if p.Target.Name != "elastickv" || len(p.Verify.Metrics) != 3 || p.Verify.Status != "" || len(p.Verify.HTTP) != 0 {
			t.Errorf("%s: verify %+v, want the elastickv target's three conditions and no HTTP paths", tt.plan, p.Verify)
		}
		if p.Replicas[0].HTTPConfig.Authorization == nil || p.Replicas[0].HTTPConfig.Authorization.CredentialsFile == "" {
			t.Errorf("%s: replica n1 has no metrics token configured", tt.plan)
		}
	}
}
