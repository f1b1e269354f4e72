// Package sshtest starts a real OpenSSH server (/usr/sbin/sshd) on a free
// 127.0.0.1 port for a test, with generated host and user keys, its own
// sshd_config and a known_hosts file that trusts it, so SSH code is tested
// against the server it will meet in production.
//
// It is for tests only. It never listens beyond loopback, and it fails the
// test, never skips it, when sshd is missing: CI installs openssh-server.
package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/lanectl/lanectl/internal/testport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is the server binary. sshd must be started by absolute path because
// it re-executes itself for every connection.
const SSHD = "/usr/sbin/sshd"

// Server is a running sshd that accepts User with IdentityFile.
type Server struct {
	// Addr is 127.0.0.1:port; Host and Port are its parts.
	Addr, Host, Port string
	// User is the account logins run as: the current user.
	User string
	// Dir holds the server's config, keys and logs.
	Dir string
	// KnownHosts is a known_hosts file that trusts this server's host key.
	KnownHosts string
	// IdentityFile is an unencrypted private key the server accepts.
	IdentityFile string

	t        testing.TB
	hostKey  string // path of the host private key
	logLevel string
	mu       sync.Mutex
	cmd      *exec.Cmd
	logs     *lockedBuffer
	waited   chan struct{}
}

// Options change how Start configures sshd.
type Options struct {
	// LogLevel is sshd's LogLevel, VERBOSE when empty. DEBUG1 also logs
	// every direct-tcpip channel: what a jump host forwards, and where to.
	LogLevel string
}

// Start generates keys, writes sshd_config and starts sshd, failing t if it
// does not accept connections within a few seconds. The server stops when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := os.Stat(SSHD); err != nil {
		t.Fatalf("sshtest: %s not found (%v): install openssh-server", SSHD, err)
	}
	// sshd refuses to start without its privilege separation directory.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshtest: create /run/sshd: %v", err)
	}
	dir := t.TempDir()
	s := &Server{t: t, Dir: dir, Host: "127.0.0.1", User: currentUser(t), logLevel: o.LogLevel}
	if s.logLevel == "" {
		s.logLevel = "VERBOSE"
	}
	s.hostKey = filepath.Join(dir, "ssh_host_ed25519_key")
	hostPub := writeKey(t, s.hostKey)
	s.IdentityFile = filepath.Join(dir, "id_ed25519")
	userPub := writeKey(t, s.IdentityFile)
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(userPub), 0o600); err != nil {
		t.Fatal(err)
	}
	// Reserved for the whole test, as Restart rebinds it.
	s.Port = strconv.Itoa(testport.For(t).Number)
	s.Addr = net.JoinHostPort(s.Host, s.Port)
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := knownhosts.Line([]string{s.Addr}, hostPub) + "\n"
	if err := os.WriteFile(s.KnownHosts, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	s.writeConfig()
	t.Cleanup(s.Stop)
	s.start()
	return s
}

func currentUser(t testing.TB) string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if os.Geteuid() == 0 {
		return "root"
	}
	t.Fatal("sshtest: cannot tell the current user: set USER")
	return ""
}

func writeKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshtest")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(sp), 0o644); err != nil {
		t.Fatal(err)
	}
	return sp
}

func (s *Server) writeConfig() {
	conf := strings.Join([]string{
		"Port " + s.Port,
		"ListenAddress " + s.Host,
		"HostKey " + s.hostKey,
		"PidFile " + filepath.Join(s.Dir, "sshd.pid"),
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		// The test's temporary directory is not owned the way sshd wants
		// for a home directory.
		"StrictModes no",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PermitRootLogin prohibit-password",
		"UsePAM no",
		"UseDNS no",
		"AllowUsers " + s.User,
		"LogLevel " + s.logLevel,
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(s.Dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logs = &lockedBuffer{}
	cmd := exec.Command(SSHD, "-D", "-e", "-f", filepath.Join(s.Dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("sshtest: start sshd: %v", err)
	}
	s.cmd = cmd
	s.waited = make(chan struct{})
	go func(waited chan struct{}) {
		_ = cmd.Wait()
		close(waited)
	}(s.waited)

	deadline := time.Now().Add(10 * time.Second)
	for {
		if ready(s.Addr) {
			return
		}
		select {
		case <-s.waited:
			s.t.Fatalf("sshtest: sshd exited at start: %s", s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshtest: sshd not accepting on %s after 10s: %s", s.Addr, s.logs.String())
		}
	}
}

// ready is true when the server answers with an SSH banner.
func ready(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "SSH-"
}

// Stop kills sshd and waits for it. Connections already open are served by
// their own sshd processes until they end. Stop is idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.waited
	s.cmd = nil
}

// Restart starts sshd again on the same port after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// RotateHostKey gives the server a new host key and restarts it, leaving
// KnownHosts with the old one: what a client sees when a host was
// reinstalled, or when someone sits in the middle.
func (s *Server) RotateHostKey() ssh.PublicKey {
	s.t.Helper()
	s.Stop()
	pub := writeKey(s.t, s.hostKey)
	s.start()
	return pub
}

// HostKey reads the server's current public host key.
func (s *Server) HostKey() ssh.PublicKey {
	s.t.Helper()
	data, err := os.ReadFile(s.hostKey + ".pub")
	if err != nil {
		s.t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		s.t.Fatal(err)
	}
	return k
}

// Logs returns what sshd has logged since it last started.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// SSHAddress is the server as a plan writes it: user@127.0.0.1:port.
func (s *Server) SSHAddress() string {
	return fmt.Sprintf("%s@%s", s.User, s.Addr)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
