package rollout

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/sshtest"
)

func newTestRunner(t *testing.T, srv *sshtest.Server, mod func(*SSHRunnerConfig)) *SSHRunner {
	t.Helper()
	cfg := SSHRunnerConfig{
		SSH: SSHConfig{
			KnownHosts:     srv.KnownHosts,
			IdentityFiles:  []string{srv.IdentityFile},
			ConnectTimeout: 5 * time.Second,
		},
		Home:           t.TempDir(),
		CommandTimeout: 30 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := NewSSHRunner(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSSHRunnerRun(t *testing.T) {
	srv := sshtest.Start(t)
	run := newTestRunner(t, srv, nil)
	rep := Replica{Name: "n1", SSH: srv.SSHAddress()}
	tests := []struct {
		name       string
		command    string
		wantStdout string
		wantStatus int
		wantStderr string
	}{
		{name: "ok", command: "echo hello", wantStdout: "hello\n", wantStatus: 0},
		{name: "exit status and stderr", command: "echo oops >&2; exit 3", wantStatus: 3, wantStderr: "oops"},
		{name: "quoted value stays one word", command: "printf '%s|' " + ShellQuote("a b; echo injected"), wantStdout: "a b; echo injected|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run.Run(t.Context(), rep, tt.command)
			if tt.wantStatus == 0 && err != nil {
				t.Fatalf("Run: %v", err)
			}
			if tt.wantStatus != 0 {
				var ce *CommandError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCommandFailed) {
					t.Fatalf("got error %v, want a *CommandError", err)
				}
				if !strings.Contains(err.Error(), tt.wantStderr) {
					t.Errorf("got error %q, want it to quote stderr %q", err, tt.wantStderr)
				}
			}
			if out.ExitStatus != tt.wantStatus {
				t.Errorf("exit status: got %d, want %d", out.ExitStatus, tt.wantStatus)
			}
			if tt.wantStdout != "" && out.Stdout != tt.wantStdout {
				t.Errorf("stdout: got %q, want %q", out.Stdout, tt.wantStdout)
			}
		})
	}
}

// A command that outlives its timeout is killed on the replica, not only
// abandoned: sshd refuses the signal request and a closed session leaves the
// command running (see remoteLimit), so without the remote limit this
// command would write "late" 30 s later.
func TestSSHRunnerCommandTimeoutKillsRemote(t *testing.T) {
	srv := sshtest.Start(t)
	run := newTestRunner(t, srv, func(c *SSHRunnerConfig) { c.CommandTimeout = 2 * time.Second })
	dir := t.TempDir()
	file, pgidFile := filepath.Join(dir, "ran.txt"), filepath.Join(dir, "pgid")
	// The shell notes its process group first, so the test can tell when
	// every process of the command (shell, sleep) is gone.
	command := fmt.Sprintf("cut -d' ' -f5 /proc/$$/stat > %s; sleep 30; echo late >> %s", ShellQuote(pgidFile), ShellQuote(file))
	start := time.Now()
	out, err := run.Run(t.Context(), Replica{Name: "n1", SSH: srv.SSHAddress()}, command)
	took := time.Since(start)
	var ce *CommandError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCommandTimeout) || !errors.Is(err, ErrCommandFailed) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("got %v, want a *CommandError that is ErrCommandTimeout and says it timed out", err)
	}
	if out.ExitStatus != -1 && out.ExitStatus != 128+9 {
		t.Errorf("exit status: got %d, want -1 (never exited) or 137 (killed on the replica)", out.ExitStatus)
	}
	if took > 10*time.Second {
		t.Errorf("Run took %v with a 2s timeout", took)
	}
	data, err := os.ReadFile(pgidFile)
	if err != nil {
		t.Fatalf("the command did not start: %v", err)
	}
	pgid := strings.TrimSpace(string(data))
	waitGone(t, "process group "+pgid+" of the timed-out command to be gone", "-g", pgid)
	// Its shell, the only writer of the file, is dead: "late" can never come.
	if data, _ := os.ReadFile(file); strings.Contains(string(data), "late") {
		t.Errorf("the timed-out command went on and wrote %q", data)
	}
}

// The replica enforces the time left after connecting, in whole seconds,
// and the command keeps its quoting.
func TestRemoteLimit(t *testing.T) {
	const wrapped = `sh -c 'echo '\''a b'\'''`
	tests := []struct {
		limit     time.Duration
		want      string
		wantLimit time.Duration
	}{
		{1500 * time.Millisecond, "timeout -s KILL 2 " + wrapped, 2 * time.Second},
		{10 * time.Millisecond, "timeout -s KILL 1 " + wrapped, time.Second},
		{90 * time.Second, "timeout -s KILL 90 " + wrapped, 90 * time.Second},
	}
	for _, tt := range tests {
		got, gotLimit := remoteLimit("echo 'a b'", tt.limit)
		if got != tt.want || gotLimit != tt.wantLimit {
			t.Errorf("remoteLimit(%v) = %q, %v; want %q, %v", tt.limit, got, gotLimit, tt.want, tt.wantLimit)
		}
	}
}

func TestSSHRunnerHostKeys(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, srv *sshtest.Server) (knownHosts string)
		wantErr error
	}{
		{
			name: "unknown host",
			prepare: func(t *testing.T, srv *sshtest.Server) string {
				kh := filepath.Join(t.TempDir(), "known_hosts")
				// A key for another host only.
				if err := os.WriteFile(kh, []byte("[127.0.0.1]:1 "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(srv.HostKey())))+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return kh
			},
			wantErr: ErrHostKeyUnknown,
		},
		{
			name: "changed key",
			prepare: func(t *testing.T, srv *sshtest.Server) string {
				srv.RotateHostKey()
				return srv.KnownHosts
			},
			wantErr: ErrHostKeyChanged,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sshtest.Start(t)
			kh := tt.prepare(t, srv)
			run := newTestRunner(t, srv, func(c *SSHRunnerConfig) { c.SSH.KnownHosts = kh })
			marker := filepath.Join(t.TempDir(), "ran")
			rep := Replica{Name: "n1", SSH: srv.SSHAddress()}
			_, err := run.Run(t.Context(), rep, "touch "+ShellQuote(marker))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, want %v", err, tt.wantErr)
			}
			fp := ssh.FingerprintSHA256(srv.HostKey())
			if !strings.Contains(err.Error(), fp) {
				t.Errorf("got %q, want the offered fingerprint %s in it", err, fp)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("command ran despite the refused host key (stat: %v)", err)
			}
			if err := run.Check(t.Context(), rep); !errors.Is(err, tt.wantErr) {
				t.Errorf("Check: got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestSSHRunnerServerDown(t *testing.T) {
	srv := sshtest.Start(t)
	run := newTestRunner(t, srv, nil)
	srv.Stop()
	rep := Replica{Name: "n1", SSH: srv.SSHAddress()}
	_, err := run.Run(t.Context(), rep, "true")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want connection refused", err)
	}
	if errors.Is(err, ErrCommandFailed) {
		t.Errorf("got %v: an unreachable host must not look like a failed command", err)
	}
	if !strings.Contains(err.Error(), "n1") || !strings.Contains(err.Error(), srv.Addr) {
		t.Errorf("got %q, want the replica and address named", err)
	}
}

func TestSSHRunnerWrongUserKey(t *testing.T) {
	srv := sshtest.Start(t)
	other := sshtest.Start(t)
	run := newTestRunner(t, srv, func(c *SSHRunnerConfig) { c.SSH.IdentityFiles = []string{other.IdentityFile} })
	_, err := run.Run(t.Context(), Replica{Name: "n1", SSH: srv.SSHAddress()}, "true")
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("got %v, want an authentication failure", err)
	}
}

// ~/.ssh/config supplies HostName, Port, User and IdentityFile for an alias.
func TestSSHRunnerConfigFile(t *testing.T) {
	srv := sshtest.Start(t)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := "Host replica-one\n  HostName " + srv.Host + "\n  Port " + srv.Port + "\n  User " + srv.User + "\n  IdentityFile " + srv.IdentityFile + "\n"
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	run := newTestRunner(t, srv, func(c *SSHRunnerConfig) {
		c.Home = home
		c.SSH.Config = DefaultSSHConfig
		c.SSH.IdentityFiles = nil
		c.LocalUser = "nobody-such"
	})
	out, err := run.Run(t.Context(), Replica{Name: "n1", SSH: "replica-one"}, "echo via-config")
	if err != nil {
		t.Fatal(err)
	}
	if out.Stdout != "via-config\n" {
		t.Errorf("got %q, want %q", out.Stdout, "via-config\n")
	}
}

// The key lives only in a real ssh-agent.
func TestSSHRunnerAgent(t *testing.T) {
	srv := sshtest.Start(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ag := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := ag.Start(); err != nil {
		t.Fatalf("start ssh-agent (openssh-client): %v", err)
	}
	t.Cleanup(func() { _ = ag.Process.Kill(); _ = ag.Wait() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("ssh-agent socket did not appear")
		case <-time.After(10 * time.Millisecond):
		}
	}
	add := exec.Command("ssh-add", srv.IdentityFile)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v: %s", err, out)
	}
	run := newTestRunner(t, srv, func(c *SSHRunnerConfig) {
		c.SSH.IdentityFiles = nil
		c.AgentSocket = sock
	})
	out, err := run.Run(t.Context(), Replica{Name: "n1", SSH: srv.SSHAddress()}, "echo via-agent")
	if err != nil {
		t.Fatal(err)
	}
	if out.Stdout != "via-agent\n" {
		t.Errorf("got %q, want %q", out.Stdout, "via-agent\n")
	}
}

func TestNewSSHRunnerNeedsKnownHosts(t *testing.T) {
	_, err := NewSSHRunner(SSHRunnerConfig{SSH: SSHConfig{KnownHosts: filepath.Join(t.TempDir(), "missing")}})
	if err == nil || !strings.Contains(err.Error(), "known_hosts") {
		t.Fatalf("got %v, want an error about known_hosts", err)
	}
}

func TestLocalRunner(t *testing.T) {
	out, err := LocalRunner{}.Run(t.Context(), Replica{Name: "n1"}, "echo hi; echo err >&2; exit 4")
	var ce *CommandError
	if !errors.As(err, &ce) || out.ExitStatus != 4 || out.Stdout != "hi\n" || !strings.Contains(err.Error(), "err") {
		t.Fatalf("got %+v, %v; want exit 4 with stdout and stderr", out, err)
	}
}

// A local command's timeout kills what it started in the background too,
// as timeout(1) does on a replica.
func TestLocalRunnerTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	file, pgidFile := filepath.Join(dir, "ran.txt"), filepath.Join(dir, "pgid")
	command := fmt.Sprintf("cut -d' ' -f5 /proc/$$/stat > %s; (sleep 30; echo late >> %s) & wait", ShellQuote(pgidFile), ShellQuote(file))
	_, err := LocalRunner{Timeout: 500 * time.Millisecond}.Run(t.Context(), Replica{Name: "n1"}, command)
	if !errors.Is(err, ErrCommandTimeout) {
		t.Fatalf("got %v, want ErrCommandTimeout", err)
	}
	data, err := os.ReadFile(pgidFile)
	if err != nil {
		t.Fatalf("the command did not start: %v", err)
	}
	pgid := strings.TrimSpace(string(data))
	waitGone(t, "process group "+pgid+" of the timed-out command to be gone", "-g", pgid)
	if data, _ := os.ReadFile(file); len(data) > 0 {
		t.Errorf("the timed-out command's background job wrote %q", data)
	}
}

// waitGone waits until pgrep with the flag (-g PGID, -f PATTERN) matches no
// process: a killed command and everything it started are gone.
func waitGone(t *testing.T, what, flag, arg string) {
	t.Helper()
	promtest.Eventually(t, 10*time.Second, what, func() bool {
		err := exec.Command("pgrep", flag, arg).Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("pgrep: %v", err)
		}
		return ee != nil && ee.ExitCode() == 1 // no process matched
	})
}
