package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lanectl/lanectl/internal/testport"
	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/sshtest"
)

// The end-to-end tests run real replica processes ('lanectl node run'),
// built from this tree, under testdata/supervise.sh, which stands in for
// systemd: the plan's commands rewrite a replica's env file and signal its
// supervisor to restart it, over a real sshd.

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// lanectlBinary builds ./cmd/lanectl once per test binary.
func lanectlBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "lanectl-rollout-test-")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "lanectl")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/lanectl")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/lanectl: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

func removeBuild() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// fleet is a cluster of replica processes, each under its own supervisor.
type fleet struct {
	t       *testing.T
	dir     string
	names   []string
	urls    []string
	sups    []*exec.Cmd
	waited  []chan struct{}
	mu      sync.Mutex
	stopped bool
}

func (f *fleet) envFile(i int) string { return filepath.Join(f.dir, f.names[i]+".env") }
func (f *fleet) pidFile(i int) string { return filepath.Join(f.dir, f.names[i]+".pid") }
func (f *fleet) logFile(i int) string { return filepath.Join(f.dir, f.names[i]+".log") }

// startFleet starts n replicas n1..nN with the flag off and waits until
// every one is healthy.
func startFleet(t *testing.T, n int) *fleet {
	t.Helper()
	bin := lanectlBinary(t)
	f := &fleet{t: t, dir: t.TempDir()}
	raft := make([]string, n)
	var peers []string
	for i := range n {
		f.names = append(f.names, "n"+strconv.Itoa(i+1))
		// Reserved for the whole test: a replica rebinds its ports each
		// time the rollout restarts it.
		raft[i] = testport.For(t).Addr()
		f.urls = append(f.urls, "http://"+testport.For(t).Addr())
		peers = append(peers, f.names[i]+"="+raft[i])
	}
	t.Cleanup(f.stop)
	for i := range n {
		if err := os.WriteFile(f.envFile(i), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(f.logFile(i))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", "testdata/supervise.sh", f.envFile(i), f.pidFile(i),
			bin, "node", "run", "--id", f.names[i], "--listen", raft[i],
			"--http", strings.TrimPrefix(f.urls[i], "http://"), "--data", filepath.Join(f.dir, f.names[i]),
			"--peers", strings.Join(peers, ","), "--tick", "50ms", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		_ = logf.Close()
		w := make(chan struct{})
		go func() { _ = cmd.Wait(); close(w) }()
		f.sups = append(f.sups, cmd)
		f.waited = append(f.waited, w)
	}
	f.waitHealthy(30 * time.Second)
	return f
}

// stop ends every supervisor (and with it its replica) and waits.
func (f *fleet) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	for _, c := range f.sups {
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	for i, w := range f.waited {
		select {
		case <-w:
		case <-time.After(15 * time.Second):
			_ = f.sups[i].Process.Kill()
			<-w
		}
	}
}

func (f *fleet) healthy(i int) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(f.urls[i] + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (f *fleet) waitHealthy(timeout time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(timeout)
	for i := range f.names {
		for !f.healthy(i) {
			if time.Now().After(deadline) {
				f.t.Fatalf("replica %s not healthy after %v; log:\n%s", f.names[i], timeout, f.log(i))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func (f *fleet) log(i int) string {
	b, _ := os.ReadFile(f.logFile(i))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// leader returns the index of the replica n1 reports as leader.
func (f *fleet) leader() int {
	f.t.Helper()
	var idx int
	promtest.Eventually(f.t, 20*time.Second, "a leader", func() bool {
		r := f.replica(0)
		p := lanectlProber([]Replica{r})
		defer p.CloseIdleConnections()
		pr := p.Probe(f.t.Context(), r, time.Now())
		if pr.Report == nil {
			return false
		}
		for i, n := range f.names {
			if n == pr.Report.Leader {
				idx = i
				return true
			}
		}
		return false
	})
	return idx
}

// childPID is the pid of replica i's current process.
func (f *fleet) childPID(i int) int {
	f.t.Helper()
	b, err := os.ReadFile(f.pidFile(i) + ".child")
	if err != nil {
		f.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		f.t.Fatal(err)
	}
	return pid
}

// lanesEnabled reads the flag from replica i's own /metrics.
func (f *fleet) lanesEnabled(ctx context.Context, i int) (bool, error) {
	r := f.replica(i)
	p := lanectlProber([]Replica{r})
	defer p.CloseIdleConnections()
	fl := p.Probe(ctx, r, time.Now()).Flag
	if !fl.Known {
		return false, errors.New(fl.Detail)
	}
	return fl.Is(true), nil
}

// replica is replica i as a plan names it.
func (f *fleet) replica(i int) Replica {
	return Replica{Name: f.names[i], HTTP: f.urls[i], Selector: fmt.Sprintf("node_id=%q", f.names[i])}
}

func (f *fleet) metricsTargets() []string {
	out := make([]string, len(f.urls))
	for i, u := range f.urls {
		out[i] = u + "/metrics"
	}
	return out
}

// rig is everything a rollout end-to-end test needs: the fleet, a real
// sshd in front of it, a real Prometheus scraping it, and a plan file.
type rig struct {
	t        *testing.T
	fleet    *fleet
	ssh      *sshtest.Server
	prom     *promtest.Server
	dir      string
	planPath string
	home     string
}

type rigOptions struct {
	replicas int
	// stages is the stages block; replica i gets stage stageOf(i, leader),
	// where leader is the index of the raft leader when the plan is written.
	stages  string
	stageOf func(i, leader int) string
	window  time.Duration
	// enable and disable replace the default commands when set.
	enable, disable string
	// extra is appended to the plan.
	extra string
	// noProm skips Prometheus (tests that never judge a soak).
	noProm bool
	// verifyTimeout defaults to 20s.
	verifyTimeout time.Duration
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.replicas == 0 {
		o.replicas = 3
	}
	if o.window == 0 {
		o.window = 8 * time.Second
	}
	if o.verifyTimeout == 0 {
		o.verifyTimeout = 20 * time.Second
	}
	if o.stages == "" {
		o.stages = "  - {name: staging}\n  - {name: canary}\n  - {name: fleet, max_parallel: 2}\n"
		o.stageOf = func(i, _ int) string { return []string{"staging", "canary", "fleet"}[min(i, 2)] }
	}
	r := &rig{t: t, dir: t.TempDir(), home: t.TempDir()}
	r.fleet = startFleet(t, o.replicas)
	r.ssh = sshtest.Start(t)
	promURL := "http://127.0.0.1:1"
	if !o.noProm {
		r.prom = promtest.Start(t, promtest.Options{Targets: r.fleet.metricsTargets(), ScrapeInterval: 500 * time.Millisecond})
		promURL = r.prom.URL
		r.waitScraped()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "prometheus: {url: %q}\n", promURL)
	fmt.Fprintf(&b, "soak: {window: %s, interval: 1s}\n", o.window)
	fmt.Fprintf(&b, "ssh:\n  known_hosts: %q\n  identity_files: [%q]\n  config: %q\n  connect_timeout: 5s\n",
		r.ssh.KnownHosts, r.ssh.IdentityFile, filepath.Join(r.dir, "no-ssh-config"))
	b.WriteString("replicas:\n")
	leader := r.fleet.leader()
	for i, n := range r.fleet.names {
		fmt.Fprintf(&b, "  - {name: %s, stage: %s, ssh: %q, http: %q}\n", n, o.stageOf(i, leader), r.ssh.SSHAddress(), r.fleet.urls[i])
	}
	b.WriteString("stages:\n" + o.stages)
	b.WriteString("commands:\n")
	fmt.Fprintf(&b, "  env_file: %q\n", filepath.Join(r.fleet.dir, "{{.Replica.Name}}.env"))
	fmt.Fprintf(&b, "  restart: %q\n", r.restartCommand())
	if o.enable != "" {
		fmt.Fprintf(&b, "  enable: %q\n", o.enable)
	}
	if o.disable != "" {
		fmt.Fprintf(&b, "  disable: %q\n", o.disable)
	}
	b.WriteString("  timeout: 30s\n")
	fmt.Fprintf(&b, "verify: {timeout: %s, interval: 200ms, settle: 2}\n", o.verifyTimeout)
	b.WriteString(o.extra)
	r.planPath = filepath.Join(r.dir, "lanectl.yaml")
	if err := os.WriteFile(r.planPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// The runner refuses an SSH config file named in the plan but missing;
	// an empty one behaves like a host without ~/.ssh/config.
	if err := os.WriteFile(filepath.Join(r.dir, "no-ssh-config"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// waitScraped waits until Prometheus has scraped every replica a few
// times: it starts scraping some seconds after it reports ready, and a soak
// window before that would lack coverage.
func (r *rig) waitScraped() {
	r.t.Helper()
	q := fmt.Sprintf(`count(count_over_time(up{job=%q}[10s]) >= 3)`, promtest.Job)
	promtest.Eventually(r.t, 30*time.Second, "Prometheus to scrape every replica", func() bool { return r.promCountIs(q, len(r.fleet.names)) })
}

// waitScrapedPast waits until Prometheus has scraped every replica at or
// after at, so a query up to at sees everything the replicas exported then.
func (r *rig) waitScrapedPast(at time.Time) {
	r.t.Helper()
	q := fmt.Sprintf(`count(timestamp(up{job=%q}) >= %.3f)`, promtest.Job, float64(at.UnixMilli())/1000)
	promtest.Eventually(r.t, 30*time.Second, "Prometheus to scrape every replica past "+at.Format(time.RFC3339Nano), func() bool { return r.promCountIs(q, len(r.fleet.names)) })
}

// promCountIs reports whether the instant query q, a count(), answers want.
func (r *rig) promCountIs(q string, want int) bool {
	resp, err := http.Get(r.prom.URL + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data.Result) != 1 {
		return false
	}
	return body.Data.Result[0].Value[1] == strconv.Itoa(want)
}

// restartCommand signals the replica's supervisor, as systemctl restart
// would.
func (r *rig) restartCommand() string {
	return fmt.Sprintf(`kill -HUP "$(cat %s/{{.Replica.Name}}.pid)"`, r.fleet.dir)
}

func (r *rig) statePath() string { return filepath.Join(r.dir, DefaultStateFile) }

func (r *rig) journal() []byte {
	b, err := os.ReadFile(r.statePath())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.t.Fatal(err)
	}
	return b
}

func (r *rig) state() *State {
	s, err := LoadState(r.statePath())
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

type cliResult struct {
	stdout, stderr string
	code           int
}

func (c cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", c.code, c.stdout, c.stderr)
}

// lanectl runs the built binary against the rig's plan.
func (r *rig) lanectl(ctx context.Context, args ...string) cliResult {
	r.t.Helper()
	cmd := r.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		r.t.Fatalf("run lanectl %v: %v", args, err)
	}
	return res
}

func (r *rig) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, lanectlBinary(r.t), append(args, "--config", r.planPath)...)
	cmd.Env = []string{"HOME=" + r.home, "USER=" + r.ssh.User, "PATH=" + os.Getenv("PATH")}
	return cmd
}
