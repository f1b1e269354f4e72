package rollout

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/sshtest"
	"github.com/lanectl/lanectl/targets"
	"github.com/lanectl/lanectl/targets/elastickvtest"
)

// growingElastickv serves real scrapes of stock elastickv with their
// outbound traffic counter growing at every scrape (elastickvtest.Growing),
// behind a bearer token. Replica nI serves legacy-nI until its flag file
// holds a true value, then n2-fourlane-nI, from one capture's worth of
// traffic again, as a process restarted with the flag would.
type growingElastickv struct {
	dir, token string
	urls       []string
}

func startGrowingElastickv(t *testing.T) *growingElastickv {
	t.Helper()
	f := &growingElastickv{dir: t.TempDir(), token: "s3cret-metrics-token"}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		g, err := elastickvtest.NewGrowing("legacy-"+name, targets.ElastickvSendStream)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		fourLane := false
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+f.token {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			mu.Lock()
			if on := f.flagOn(name); on != fourLane {
				capture := "legacy-" + name
				if on {
					capture = "n2-fourlane-" + name
				}
				if err := g.Switch(capture); err != nil {
					mu.Unlock()
					http.Error(w, err.Error(), http.StatusInternalServerError)
					return
				}
				fourLane = on
			}
			mu.Unlock()
			g.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, srv.URL)
	}
	if err := os.WriteFile(f.tokenFile(), []byte(f.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *growingElastickv) tokenFile() string           { return filepath.Join(f.dir, "token") }
func (f *growingElastickv) flagFile(name string) string { return filepath.Join(f.dir, name+".flag") }

func (f *growingElastickv) flagOn(name string) bool {
	b, err := os.ReadFile(f.flagFile(name))
	if err != nil {
		return false
	}
	on, err := strconv.ParseBool(strings.TrimSpace(string(b)))
	return err == nil && on
}

// TestE2EElastickvSoakJudged rolls the flag out on stock elastickv through
// a real Prometheus (scraping with the metrics token) and a real sshd: the
// canary's soak, watched live with soak --config and then judged by
// advance with the elastickv gate set, has its flag gate decided from the
// journal and the read command (no metric shows the flag), and the fleet
// follows.
func TestE2EElastickvSoakJudged(t *testing.T) {
	ek := startGrowingElastickv(t)
	r := &rig{t: t, dir: t.TempDir(), home: t.TempDir()}
	r.ssh = sshtest.Start(t)
	var targetURLs []string
	for _, u := range ek.urls {
		targetURLs = append(targetURLs, u+"/metrics")
	}
	r.prom = promtest.Start(t, promtest.Options{Targets: targetURLs, ScrapeInterval: 250 * time.Millisecond, BearerTokenFile: ek.tokenFile()})

	const window = 4 * time.Second
	var b strings.Builder
	b.WriteString("target: elastickv\n")
	fmt.Fprintf(&b, "prometheus: {url: %q}\n", r.prom.URL)
	fmt.Fprintf(&b, "soak: {window: %s, interval: 1s}\n", window)
	fmt.Fprintf(&b, "ssh:\n  known_hosts: %q\n  identity_files: [%q]\n  config: %q\n  connect_timeout: 5s\n",
		r.ssh.KnownHosts, r.ssh.IdentityFile, filepath.Join(r.dir, "no-ssh-config"))
	fmt.Fprintf(&b, "replica_http:\n  authorization: {type: Bearer, credentials_file: %q}\n", ek.tokenFile())
	b.WriteString("replicas:\n")
	for i, u := range ek.urls {
		stage := "fleet"
		if i == 1 {
			stage = "canary"
		}
		fmt.Fprintf(&b, "  - {name: n%d, stage: %s, ssh: %q, http: %q}\n", i+1, stage, r.ssh.SSHAddress(), u)
	}
	b.WriteString("stages: [{name: canary}, {name: fleet, max_parallel: 2}]\n")
	flagFile := filepath.Join(ek.dir, "{{.Replica.Name}}.flag")
	fmt.Fprintf(&b, "commands:\n  enable: 'echo 1 > %s'\n  disable: 'rm -f %s'\n  read: 'cat %s 2>/dev/null || true'\n  timeout: 30s\n", flagFile, flagFile, flagFile)
	b.WriteString("verify: {timeout: 10s, interval: 200ms, settle: 2}\n")
	r.planPath = filepath.Join(r.dir, "lanectl.yaml")
	for path, body := range map[string]string{r.planPath: b.String(), filepath.Join(r.dir, "no-ssh-config"): ""} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	scrapedPast := func(at time.Time) {
		q := fmt.Sprintf(`count(timestamp(up{job=%q} == 1) >= %.3f)`, promtest.Job, float64(at.UnixMilli())/1000)
		promtest.Eventually(t, 30*time.Second, "Prometheus to scrape every replica past "+at.Format(time.RFC3339Nano), func() bool { return r.promCountIs(q, 3) })
	}
	scrapedPast(time.Now().Add(2 * time.Second))

	ctx := t.Context()
	if res := r.lanectl(ctx, "advance"); res.code != 0 || !strings.Contains(res.stdout, "enabled n2") {
		t.Fatalf("first advance: %v", res)
	}
	enabledAt, on := r.state().EnabledAt("n2")
	if !on {
		t.Fatalf("journal: n2 not enabled after the first advance")
	}
	// Watched live, the soak reads the flag on the replicas as advance
	// does, so it can pass: the metrics alone cannot show the flag.
	live := r.lanectl(ctx, "soak", "--config", r.planPath, "--canary", "n2")
	if live.code != 0 || !strings.Contains(live.stdout, "decided from the journal and the read command") {
		t.Fatalf("soak --config: %v\nwant a pass, the flag gate decided from the journal and the read command", live)
	}
	scrapedPast(enabledAt.Add(window + time.Second))

	res := r.lanectl(ctx, "advance")
	if res.code != 0 || !strings.Contains(res.stdout, "soak of n2 passed") || !strings.Contains(res.stdout, "enabled n1, n3") {
		t.Fatalf("second advance: %v\nwant the canary's soak passed and the fleet enabled", res)
	}
	var soak *Event
	for _, e := range r.state().Events {
		if e.Step == StepSoak && len(e.Replicas) == 1 && e.Replicas[0] == "n2" {
			soak = &e
		}
	}
	// Every gate of the set passed, the flag gate among them: without its
	// evidence it would be inconclusive, and so would the soak.
	want := fmt.Sprintf("all %d gates pass", len(targets.Elastickv().Gates()))
	if soak == nil || soak.Verdict != "pass" || !strings.Contains(soak.Reason, want) {
		t.Fatalf("journal: soak of n2 %+v, want a pass with %q", soak, want)
	}
	for _, n := range []string{"n1", "n3"} {
		if !ek.flagOn(n) {
			t.Errorf("%s's flag file does not hold the flag after the fleet step", n)
		}
	}
}
