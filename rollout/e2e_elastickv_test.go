package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/rollout/sshtest"
)

// elastickvFleet serves real scrapes of stock elastickv (targets/
// elastickvtest) as three replicas' metrics listeners, behind a bearer
// token as --metricsToken puts them. The captures cannot restart, so the
// flag lives on the SSH side: enable writes <dir>/<replica>.flag, read
// cats it, disable removes it, and while n2's file holds a true value every
// replica serves the capture taken after n2 restarted four-lane. That
// switch is this test's "process".
type elastickvFleet struct {
	dir, token string
	urls       []string
}

func startElastickvFleet(t *testing.T) *elastickvFleet {
	t.Helper()
	f := &elastickvFleet{dir: t.TempDir(), token: "s3cret-metrics-token"}
	for i := 1; i <= 3; i++ {
		legacy := capture(t, fmt.Sprintf("legacy-n%d", i))
		fourLane := capture(t, fmt.Sprintf("n2-fourlane-n%d", i))
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+f.token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			body := legacy
			if f.n2FourLane() {
				body = fourLane
			}
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write(body)
		}))
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, srv.URL)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "token"), []byte(f.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *elastickvFleet) flagFile(name string) string { return filepath.Join(f.dir, name+".flag") }

func (f *elastickvFleet) n2FourLane() bool {
	b, err := os.ReadFile(f.flagFile("n2"))
	if err != nil {
		return false
	}
	on, err := strconv.ParseBool(strings.TrimSpace(string(b)))
	return err == nil && on
}

// elastickvRig is a plan of the elastickv target over the fleet, with the
// flag commands run over a real sshd.
type elastickvRig struct {
	*rig
	ek *elastickvFleet
}

func newElastickvRig(t *testing.T, enableValue string) *elastickvRig {
	t.Helper()
	ek := startElastickvFleet(t)
	r := &rig{t: t, dir: t.TempDir(), home: t.TempDir()}
	r.ssh = sshtest.Start(t)
	var b strings.Builder
	b.WriteString("target: elastickv\n")
	fmt.Fprintf(&b, "prometheus:\n  targets: [%q, %q, %q]\n", ek.urls[0]+"/metrics", ek.urls[1]+"/metrics", ek.urls[2]+"/metrics")
	b.WriteString("soak: {window: 1h, interval: 1s}\n")
	fmt.Fprintf(&b, "ssh:\n  known_hosts: %q\n  identity_files: [%q]\n  config: %q\n  connect_timeout: 5s\n",
		r.ssh.KnownHosts, r.ssh.IdentityFile, filepath.Join(r.dir, "no-ssh-config"))
	fmt.Fprintf(&b, "replica_http:\n  bearer_token_file: %q\n", filepath.Join(ek.dir, "token"))
	b.WriteString("replicas:\n")
	for i, u := range ek.urls {
		stage := map[int]string{1: "canary"}[i]
		if stage == "" {
			stage = "fleet"
		}
		fmt.Fprintf(&b, "  - {name: n%d, stage: %s, ssh: %q, http: %q}\n", i+1, stage, r.ssh.SSHAddress(), u)
	}
	b.WriteString("stages: [{name: canary}, {name: fleet, max_parallel: 2}]\n")
	b.WriteString("commands:\n")
	flagFile := filepath.Join(ek.dir, "{{.Replica.Name}}.flag")
	fmt.Fprintf(&b, "  enable: 'echo %s > %s'\n", enableValue, flagFile)
	fmt.Fprintf(&b, "  disable: 'rm -f %s'\n", flagFile)
	fmt.Fprintf(&b, "  read: 'cat %s 2>/dev/null || true'\n", flagFile)
	b.WriteString("  timeout: 30s\n")
	b.WriteString("verify: {timeout: 4s, interval: 200ms, settle: 2}\n")
	r.planPath = filepath.Join(r.dir, "lanectl.yaml")
	if err := os.WriteFile(r.planPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "no-ssh-config"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return &elastickvRig{rig: r, ek: ek}
}

func (r *elastickvRig) run(ctx context.Context, wantCode int, wantOut string, args ...string) cliResult {
	r.t.Helper()
	res := r.lanectl(ctx, args...)
	if res.code != wantCode || !strings.Contains(res.stdout+res.stderr, wantOut) {
		r.t.Fatalf("lanectl %s: got %v\nwant exit %d and output containing %q", strings.Join(args, " "), res, wantCode, wantOut)
	}
	return res
}

// A rollout on stock elastickv: the canary's enable is proven by the read
// command over ssh and verified by the target's conditions over the
// replicas' own metrics (token required); status shows the flag as read
// and drops by group; a rollback is proven the same way.
func TestE2EElastickvAdvanceAndRollback(t *testing.T) {
	r := newElastickvRig(t, "1")
	ctx := t.Context()

	dry := r.run(ctx, 0, "1. enable n2 (stage canary)", "advance", "--dry-run")
	if !strings.Contains(dry.stdout, `ELASTICKV_RAFT_DISPATCHER_LANES runs "true" (commands.read prints a value parsed as "true")`) {
		t.Errorf("dry run does not say how the flag is proven:\n%s", dry.stdout)
	}

	r.run(ctx, 0, "enabled n2", "advance")
	if !r.ek.n2FourLane() {
		t.Fatalf("n2's flag file does not hold the flag after the enable")
	}
	var verified *Event
	for _, e := range r.state().Events {
		if e.Step == StepEnable && e.Phase == PhaseFinished {
			verified = &e
		}
	}
	if verified == nil || verified.FlagRead["n2"] != "1" {
		t.Fatalf("journal: finished enable %+v, want the read command's output for n2 (\"1\")", verified)
	}

	st := r.run(ctx, 0, "", "status", "-o", "json")
	var doc struct {
		Replicas []struct {
			Name, Flag, Metrics string
			Healthy             bool
			Health              string
			DropsBy             string             `json:"drops_by"`
			Drops               map[string]float64 `json:"drops"`
		}
	}
	if err := json.Unmarshal([]byte(st.stdout), &doc); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, st.stdout)
	}
	for _, rep := range doc.Replicas {
		want := map[string]string{"n2": FlagOn}[rep.Name]
		if want == "" {
			want = FlagOff
		}
		if rep.Flag != want || rep.Metrics != want || !rep.Healthy || rep.DropsBy != "group" {
			t.Errorf("status of %s: %+v; want journal and replica %s, healthy, drops by group", rep.Name, rep, want)
		}
		// n2's soak window is seconds old; the others' drops cover the
		// last hour of what the store scraped.
		if _, ok := rep.Drops["1"]; !ok && rep.Name != "n2" {
			t.Errorf("status of %s: drops %v, want raft group 1", rep.Name, rep.Drops)
		}
	}
	table := r.run(ctx, 0, "DROPS BY GROUP", "status")
	if !strings.Contains(table.stdout, "1=0 2=0 3=0") {
		t.Errorf("status table: want drops by group 1=0 2=0 3=0:\n%s", table.stdout)
	}

	r.run(ctx, 0, "disabled n2: verified", "rollback", "--replica", "n2")
	if _, err := os.Stat(r.ek.flagFile("n2")); !os.IsNotExist(err) {
		t.Errorf("n2's flag file after the rollback: %v, want it removed", err)
	}
}

// An enable that does not take (the value is one the replica parses as
// false) fails verification by the read command, and the automatic
// rollback verifies: exit 1 with the batch rolled back, not "rollback did
// not verify".
func TestE2EElastickvEnableNotTaken(t *testing.T) {
	r := newElastickvRig(t, "yes")
	res := r.run(t.Context(), 1, "rolled back n2", "advance")
	if !strings.Contains(res.stdout+res.stderr, `read printed "yes"`) {
		t.Errorf("advance: %v\nwant the read output in the reason", res)
	}
	if strings.Contains(res.stdout+res.stderr, ErrRollbackFailed.Error()) {
		t.Errorf("advance: %v\nthe rollback did not verify", res)
	}
	evs := r.state().Events
	if last := evs[len(evs)-1]; last.Step != StepDisable || last.Phase != PhaseFinished || !last.Auto {
		t.Errorf("last journal event %+v, want the automatic rollback finished", last)
	}
}
