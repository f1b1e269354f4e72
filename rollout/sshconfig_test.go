package rollout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/rollout/sshtest"
)

// sshConfigHome writes conf as ~/.ssh/config of a new home directory.
func sshConfigHome(t *testing.T, conf string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// knownHostsOf is one known_hosts file trusting every server given.
func knownHostsOf(t *testing.T, servers ...*sshtest.Server) string {
	t.Helper()
	var b strings.Builder
	for _, s := range servers {
		data, err := os.ReadFile(s.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// jumpRunner is a runner that reads home's ~/.ssh/config and knownHosts,
// and has the keys to log in to every server given.
func jumpRunner(t *testing.T, home, knownHosts string, servers ...*sshtest.Server) *SSHRunner {
	t.Helper()
	var ids []string
	for _, s := range servers {
		ids = append(ids, s.IdentityFile)
	}
	return newTestRunner(t, servers[len(servers)-1], func(c *SSHRunnerConfig) {
		c.Home = home
		c.SSH.Config = DefaultSSHConfig
		c.SSH.KnownHosts = knownHosts
		c.SSH.IdentityFiles = ids
		c.LocalUser = "nobody-such"
	})
}

func hostBlock(alias string, s *sshtest.Server, extra ...string) string {
	b := fmt.Sprintf("Host %s\n  HostName %s\n  Port %s\n  User %s\n", alias, s.Host, s.Port, s.User)
	for _, e := range extra {
		b += "  " + e + "\n"
	}
	return b
}

// ProxyJump with two hops, one written as an alias of the config file and
// one as ssh://user@host:port: the command runs on the replica, and each
// jump host's own log shows it forwarded the connection to the next host, so
// the test fails if any hop is bypassed.
func TestSSHRunnerProxyJump(t *testing.T) {
	b1 := sshtest.StartWith(t, sshtest.Options{LogLevel: "DEBUG1"})
	b2 := sshtest.StartWith(t, sshtest.Options{LogLevel: "DEBUG1"})
	target := sshtest.Start(t)
	hop1 := fmt.Sprintf("ssh://%s@%s:%s", b1.User, b1.Host, b1.Port)
	home := sshConfigHome(t, hostBlock("inner-bastion", b2)+hostBlock("replica-one", target, "ProxyJump "+hop1+",inner-bastion"))
	run := jumpRunner(t, home, knownHostsOf(t, b1, b2, target), b1, b2, target)
	rep := Replica{Name: "n1", SSH: "replica-one"}

	out, err := run.Run(t.Context(), rep, "echo via-bastions")
	if err != nil {
		t.Fatal(err)
	}
	if out.Stdout != "via-bastions\n" {
		t.Errorf("got %q, want %q", out.Stdout, "via-bastions\n")
	}
	for _, hop := range []struct {
		name     string
		srv      *sshtest.Server
		nextPort string
	}{{"first jump host", b1, b2.Port}, {"second jump host", b2, target.Port}} {
		want := fmt.Sprintf("server_request_direct_tcpip: originator 0.0.0.0 port 0, target 127.0.0.1 port %s", hop.nextPort)
		promtest.Eventually(t, 5*time.Second, "the "+hop.name+" to log forwarding to port "+hop.nextPort, func() bool {
			return strings.Contains(hop.srv.Logs(), want)
		})
	}
	if d := run.Describe(rep); !strings.Contains(d, "via "+b1.User+"@"+b1.Addr+", "+b2.User+"@"+b2.Addr) {
		t.Errorf("Describe = %q, want it to name both jump hosts", d)
	}

	// Without the first jump host there is no route, and the error says
	// which hop failed.
	b1.Stop()
	_, err = run.Run(t.Context(), rep, "true")
	if !errors.Is(err, syscall.ECONNREFUSED) || !strings.Contains(err.Error(), "jump host 127.0.0.1, hop 1 of 2 to replica n1") {
		t.Errorf("with the first jump host down: got %v, want connection refused naming hop 1", err)
	}
}

// Every hop's host key is checked against known_hosts: a jump host with a
// changed key, or a replica whose key is not known, is refused before any
// command runs.
func TestSSHRunnerProxyJumpHostKeys(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(bastion, target *sshtest.Server) (knownHosts []*sshtest.Server, refused *sshtest.Server)
		wantErr error
		wantMsg string
	}{
		{
			name: "jump host key changed",
			prepare: func(bastion, target *sshtest.Server) ([]*sshtest.Server, *sshtest.Server) {
				bastion.RotateHostKey()
				return []*sshtest.Server{bastion, target}, bastion
			},
			wantErr: ErrHostKeyChanged,
			wantMsg: "jump host bastion, hop 1 of 1 to replica n1",
		},
		{
			name: "replica key unknown",
			prepare: func(bastion, target *sshtest.Server) ([]*sshtest.Server, *sshtest.Server) {
				return []*sshtest.Server{bastion}, target
			},
			wantErr: ErrHostKeyUnknown,
			wantMsg: "replica n1 via bastion",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bastion, target := sshtest.Start(t), sshtest.Start(t)
			trusted, refused := tt.prepare(bastion, target)
			home := sshConfigHome(t, hostBlock("bastion", bastion)+hostBlock("replica-one", target, "ProxyJump bastion"))
			run := jumpRunner(t, home, knownHostsOf(t, trusted...), bastion, target)
			marker := filepath.Join(t.TempDir(), "ran")
			rep := Replica{Name: "n1", SSH: "replica-one"}
			_, err := run.Run(t.Context(), rep, "touch "+ShellQuote(marker))
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("got %v, want %v naming %q", err, tt.wantErr, tt.wantMsg)
			}
			if fp := ssh.FingerprintSHA256(refused.HostKey()); !strings.Contains(err.Error(), fp) {
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

// A directive that would change trust or routing, and that lanectl does not
// apply, is refused with the file and line, before anything connects. The
// server is real and the route to it works, so each case would connect if
// the directive were skipped.
func TestSSHConfigRefusedDirectives(t *testing.T) {
	srv := sshtest.Start(t)
	bastion := sshtest.Start(t)
	tests := []struct {
		name string
		// conf follows the Host replica-one block, which ends on line 5,
		// and its first line is line 6; conf may start another block.
		conf string
		want string // "" when the config is accepted
	}{
		{"StrictHostKeyChecking no", "  StrictHostKeyChecking no\n", "config:6: StrictHostKeyChecking no (for host replica-one)"},
		{"StrictHostKeyChecking accept-new", "  StrictHostKeyChecking accept-new\n", "config:6: StrictHostKeyChecking accept-new"},
		{"UserKnownHostsFile /dev/null", "  UserKnownHostsFile /dev/null\n", "config:6: UserKnownHostsFile /dev/null"},
		{"GlobalKnownHostsFile", "  GlobalKnownHostsFile /etc/ssh/other_known_hosts\n", "config:6: GlobalKnownHostsFile"},
		{"KnownHostsCommand", "  KnownHostsCommand /bin/echo\n", "config:6: KnownHostsCommand"},
		{"ProxyCommand", "  ProxyCommand ssh -W %h:%p bastion\n", "config:6: ProxyCommand ssh -W %h:%p bastion"},
		{"HostKeyAlias", "  HostKeyAlias other\n", "config:6: HostKeyAlias other"},
		{"CheckHostIP yes", "  CheckHostIP yes\n", "config:6: CheckHostIP yes"},
		{"VerifyHostKeyDNS", "  VerifyHostKeyDNS yes\n", "config:6: VerifyHostKeyDNS yes"},
		{"RevokedHostKeys", "  RevokedHostKeys /etc/ssh/revoked\n", "config:6: RevokedHostKeys"},
		{"CanonicalizeHostname", "  CanonicalizeHostname yes\n", "config:6: CanonicalizeHostname yes"},
		{"BindAddress", "  BindAddress 127.0.0.1\n", "config:6: BindAddress"},
		{"ProxyJump with a path", "  ProxyJump ssh://bastion/x\n", `config:6: ProxyJump ssh://bastion/x (for host replica-one): ssh config directive not supported: ProxyJump hop "ssh://bastion/x"`},
		{"ProxyJump with a bad port", "  ProxyJump bastion:0\n", "config:6: ProxyJump bastion:0"},
		{"from Host * after the host's block", "Host *\n  StrictHostKeyChecking no\n", "config:7: StrictHostKeyChecking no (for host replica-one)"},
		{"jump host with its own ProxyJump", "  ProxyJump bastion\n" + hostBlock("bastion", bastion, "ProxyJump elsewhere"),
			"jump host bastion: " + "HOME/.ssh/config:11: ProxyJump elsewhere (for host bastion)"},
		{"jump host with StrictHostKeyChecking no", "  ProxyJump bastion\n" + hostBlock("bastion", bastion, "StrictHostKeyChecking no"),
			"jump host bastion: " + "HOME/.ssh/config:11: StrictHostKeyChecking no (for host bastion)"},
		{"from an included file", "  Include INCLUDED\n", "config:6 (in a file its Include brings in): StrictHostKeyChecking no (for host replica-one)"},
		// What lanectl does anyway is accepted.
		{"StrictHostKeyChecking yes", "  StrictHostKeyChecking yes\n  CheckHostIP no\n  ProxyJump none\n  ProxyCommand none\n", ""},
		{"UserKnownHostsFile of the plan", "  UserKnownHostsFile KNOWN_HOSTS\n", ""},
		{"another host's directives", "Host other\n  StrictHostKeyChecking no\n  ProxyCommand nc %h %p\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			included := filepath.Join(t.TempDir(), "included.conf")
			if err := os.WriteFile(included, []byte("StrictHostKeyChecking no\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			conf := hostBlock("replica-one", srv) + "  IdentityFile " + srv.IdentityFile + "\n" +
				strings.NewReplacer("KNOWN_HOSTS", srv.KnownHosts, "INCLUDED", included).Replace(tt.conf)
			home := sshConfigHome(t, conf)
			run := jumpRunner(t, home, srv.KnownHosts, bastion, srv)
			err := run.Check(t.Context(), Replica{Name: "n1", SSH: "replica-one"})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			want := strings.ReplaceAll(tt.want, "HOME/", home+"/")
			if !errors.Is(err, ErrSSHConfigUnsupported) || !strings.Contains(err.Error(), want) {
				t.Fatalf("got  %v\nwant ErrSSHConfigUnsupported containing %q", err, want)
			}
			if !strings.Contains(err.Error(), filepath.Join(home, ".ssh", "config")+":") {
				t.Errorf("got %v, want it to name the config file", err)
			}
		})
	}
}

func TestExpandHostName(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"%h.internal", "db1.internal", ""},
		{"10.0.0.1", "10.0.0.1", ""},
		{"a%%b", "a%b", ""},
		{"%d.example", "", "not %d"},
		{"db%", "", "lone %"},
	}
	for _, tt := range tests {
		got, err := expandHostName(tt.in, "db1")
		if got != tt.want || (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("expandHostName(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
