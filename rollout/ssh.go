package rollout

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHRunnerConfig is what the SSH runner needs besides the plan's ssh block.
// The caller reads the environment and passes the values in.
type SSHRunnerConfig struct {
	SSH SSHConfig
	// Home expands "~/" in paths.
	Home string
	// AgentSocket is $SSH_AUTH_SOCK; empty means no agent.
	AgentSocket string
	// LocalUser is the user when neither the address nor the SSH config
	// names one, as with ssh(1).
	LocalUser string
	// CommandTimeout bounds each command, connection included.
	CommandTimeout time.Duration
}

// SSHRunner runs commands on replicas over SSH, one connection per command,
// through the ProxyJump hops the SSH config file names for the replica.
type SSHRunner struct {
	cfg        SSHRunnerConfig
	hostKeys   ssh.HostKeyCallback
	sshConfig  *sshConfigFile
	knownHosts string
}

// NewSSHRunner reads known_hosts and the SSH config file. A missing
// known_hosts is an error: without it no host can be trusted.
func NewSSHRunner(cfg SSHRunnerConfig) (*SSHRunner, error) {
	s := &SSHRunner{cfg: cfg}
	s.knownHosts = expandHome(cfg.Home, cfg.SSH.KnownHosts)
	cb, err := knownhosts.New(s.knownHosts)
	if err != nil {
		return nil, fmt.Errorf("read known_hosts: %w", err)
	}
	s.hostKeys = cb
	if cfg.SSH.Config != "" {
		path := expandHome(cfg.Home, cfg.SSH.Config)
		f, err := os.Open(path)
		switch {
		case errors.Is(err, fs.ErrNotExist) && cfg.SSH.Config == DefaultSSHConfig:
			// ssh(1) also runs without a user config.
		case err != nil:
			return nil, fmt.Errorf("read ssh config: %w", err)
		default:
			defer f.Close()
			c, err := ssh_config.Decode(f)
			if err != nil {
				return nil, fmt.Errorf("read ssh config %s: %w", path, err)
			}
			s.sshConfig = &sshConfigFile{path: path, cfg: c}
		}
	}
	return s, nil
}

func expandHome(home, p string) string {
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}

// sshTarget is one host to connect to, a replica or a jump host, after the
// SSH config was applied.
type sshTarget struct {
	// alias is the host as the plan or the ProxyJump line names it.
	alias            string
	user, host, port string
	identityFiles    []string
}

func (t sshTarget) addr() string { return net.JoinHostPort(t.host, t.port) }

// route is the chain of hosts that reaches r: the ProxyJump hops of its
// host, in order, then the host itself. Each is resolved through the SSH
// config file, and a directive lanectl would ignore, for any of them, is
// refused.
func (s *SSHRunner) route(r Replica) ([]sshTarget, error) {
	a, err := ParseSSHAddress(r.SSH)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.Name, err)
	}
	final, jumps, err := s.target(a)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %w", r.Name, err)
	}
	var out []sshTarget
	for _, j := range jumps {
		t, nested, err := s.target(j)
		if err == nil && len(nested) > 0 {
			set, _ := s.sshConfig.get(j.Host, "ProxyJump")
			err = s.sshConfig.refuse(j.Host, set, "lanectl follows the ProxyJump of the replica's host only: list every hop there, in order")
		}
		if err != nil {
			return nil, fmt.Errorf("replica %s: jump host %s: %w", r.Name, j.Host, err)
		}
		out = append(out, t)
	}
	return append(out, final), nil
}

// target applies the SSH config file to a, and returns it with its
// ProxyJump hops.
func (s *SSHRunner) target(a SSHAddress) (sshTarget, []SSHAddress, error) {
	h, err := s.sshConfig.host(a, s.knownHosts, func(p string) string { return expandHome(s.cfg.Home, p) })
	if err != nil {
		return sshTarget{}, nil, err
	}
	t := sshTarget{alias: a.Host, user: h.user, host: h.hostName, port: h.port}
	if t.user == "" {
		t.user = s.cfg.LocalUser
	}
	if t.user == "" {
		return t, nil, fmt.Errorf("no SSH user for %s: write user@host in its ssh address", a.Host)
	}
	if t.port == "" {
		t.port = "22"
	}
	for _, f := range s.cfg.SSH.IdentityFiles {
		t.identityFiles = append(t.identityFiles, expandHome(s.cfg.Home, f))
	}
	t.identityFiles = append(t.identityFiles, h.identityFiles...)
	if len(t.identityFiles) == 0 {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			p := filepath.Join(s.cfg.Home, ".ssh", name)
			if _, err := os.Stat(p); err == nil {
				t.identityFiles = append(t.identityFiles, p)
			}
		}
	}
	return t, h.jumps, nil
}

// signers collects the agent's keys and the identity files' keys. Keys that
// need a passphrase are left to the agent.
func (s *SSHRunner) signers(t sshTarget) ([]ssh.Signer, func(), error) {
	var out []ssh.Signer
	var notes []string
	closeAgent := func() {}
	if s.cfg.AgentSocket != "" {
		conn, err := net.Dial("unix", s.cfg.AgentSocket)
		if err != nil {
			notes = append(notes, fmt.Sprintf("ssh-agent at %s: %v", s.cfg.AgentSocket, err))
		} else {
			closeAgent = func() { _ = conn.Close() }
			ag, err := agent.NewClient(conn).Signers()
			if err != nil {
				notes = append(notes, fmt.Sprintf("ssh-agent: %v", err))
			}
			out = append(out, ag...)
		}
	}
	for _, f := range t.identityFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		k, err := ssh.ParsePrivateKey(data)
		if err != nil {
			var pm *ssh.PassphraseMissingError
			if errors.As(err, &pm) {
				notes = append(notes, f+" needs a passphrase (load it into ssh-agent)")
			} else {
				notes = append(notes, fmt.Sprintf("%s: %v", f, err))
			}
			continue
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		closeAgent()
		if len(notes) == 0 {
			notes = append(notes, "no ssh-agent (SSH_AUTH_SOCK) and no identity files")
		}
		return nil, nil, fmt.Errorf("no usable SSH key: %s", strings.Join(notes, "; "))
	}
	return out, closeAgent, nil
}

// sshConn is a connection to a replica and the connections to the jump
// hosts it goes through, closed together.
type sshConn struct {
	*ssh.Client
	// via are the jump hosts' connections, in the order they were made.
	via []*ssh.Client
}

// Close closes the replica's connection, then each jump host's, last first.
func (c *sshConn) Close() error {
	err := c.Client.Close()
	for _, v := range slices.Backward(c.via) {
		_ = v.Close()
	}
	return err
}

// dial connects to r along its route: TCP to the first host, then, for
// each next host, a direct-tcpip channel through the previous one (what
// ssh -J does), each host authenticated and its host key checked against
// known_hosts.
func (s *SSHRunner) dial(ctx context.Context, r Replica) (*sshConn, error) {
	route, err := s.route(r)
	if err != nil {
		return nil, err
	}
	var hops []*ssh.Client
	fail := func(err error) (*sshConn, error) {
		for _, h := range slices.Backward(hops) {
			_ = h.Close()
		}
		return nil, err
	}
	for i, t := range route {
		what := fmt.Sprintf("replica %s", r.Name)
		if i < len(route)-1 {
			what = fmt.Sprintf("jump host %s, hop %d of %d to replica %s", t.alias, i+1, len(route)-1, r.Name)
		} else if len(route) > 1 {
			what = fmt.Sprintf("replica %s via %s", r.Name, route[i-1].alias)
		}
		c, err := s.connect(ctx, t, hops)
		if err != nil {
			var refused *HostKeyError
			if errors.As(err, &refused) {
				return fail(fmt.Errorf("ssh %s (%s): %w", t.addr(), what, refused))
			}
			return fail(fmt.Errorf("ssh %s@%s (%s): %w", t.user, t.addr(), what, err))
		}
		hops = append(hops, c)
	}
	return &sshConn{Client: hops[len(hops)-1], via: hops[:len(hops)-1]}, nil
}

// connect opens a connection to t, through the last of hops when there are
// any, and authenticates, all within the connect timeout and ctx.
func (s *SSHRunner) connect(ctx context.Context, t sshTarget, hops []*ssh.Client) (*ssh.Client, error) {
	signers, closeAgent, err := s.signers(t)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	if s.cfg.SSH.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.SSH.ConnectTimeout)
		defer cancel()
	}
	addr := t.addr()
	var conn net.Conn
	if len(hops) == 0 {
		var d net.Dialer
		conn, err = d.DialContext(ctx, "tcp", addr)
	} else {
		conn, err = hops[len(hops)-1].DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	var refused *HostKeyError
	cfg := &ssh.ClientConfig{
		User: t.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := s.hostKeys(hostname, remote, key)
			if err == nil {
				return nil
			}
			he, ok := refusedHostKey(hostname, key, err)
			if !ok {
				return err
			}
			refused = he
			return he
		},
		HostKeyAlgorithms: s.knownAlgorithms(addr),
	}
	// A connection through a jump host is an SSH channel, which has no
	// deadlines: the handshake is bounded by closing the connection when
	// ctx (with the connect timeout) ends.
	closed := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { _ = conn.Close(); close(closed) })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if !stop() {
		<-closed
		if err == nil {
			_ = c.Close()
			err = ctx.Err()
		}
	}
	if err != nil {
		_ = conn.Close()
		if refused != nil {
			return nil, refused
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("handshake: %w (%w)", ctx.Err(), err)
		}
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// Check connects and authenticates to r without running anything.
func (s *SSHRunner) Check(ctx context.Context, r Replica) error {
	c, err := s.dial(ctx, r)
	if err != nil {
		return err
	}
	return c.Close()
}

// Describe names the SSH address commands for r go to, and the jump hosts
// on the way.
func (s *SSHRunner) Describe(r Replica) string {
	d := "over ssh " + r.SSH
	route, err := s.route(r)
	if err != nil || len(route) < 2 {
		return d
	}
	var via []string
	for _, t := range route[:len(route)-1] {
		via = append(via, t.user+"@"+t.addr())
	}
	return d + " via " + strings.Join(via, ", ")
}

// Run runs command on r under /bin/sh. A non-zero exit or a timeout is a
// *CommandError carrying the output; failing to connect is a plain error.
//
// The time left of ctx (and of CommandTimeout, which bounds connecting too)
// is enforced twice: here, by closing the connection, and on the replica,
// by running the command under timeout(1), because closing the connection
// alone does not stop it there (see remoteLimit).
func (s *SSHRunner) Run(ctx context.Context, r Replica, command string) (Output, error) {
	out := Output{ExitStatus: -1}
	if s.cfg.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.CommandTimeout)
		defer cancel()
	}
	start := time.Now()
	c, err := s.dial(ctx, r)
	if err != nil {
		return out, err
	}
	defer c.Close()
	remote, limit := command, time.Duration(0)
	if deadline, ok := ctx.Deadline(); ok {
		if limit = time.Until(deadline); limit <= 0 {
			out.Duration = time.Since(start)
			return out, &CommandError{Replica: r.Name, Command: command, Output: out, TimedOut: true, Reason: fmt.Sprintf("timed out after %v while connecting; not started", out.Duration.Round(time.Millisecond))}
		}
		remote, limit = remoteLimit(command, limit)
	}
	sess, err := c.NewSession()
	if err != nil {
		return out, fmt.Errorf("ssh session on %s: %w", r.Name, err)
	}
	defer sess.Close()
	var stdout, stderr boundedBuffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	cmdStart := time.Now()
	if err := sess.Start(remote); err != nil {
		return out, fmt.Errorf("start command on %s: %w", r.Name, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var werr error
	var stopped bool
	select {
	case werr = <-done:
	case <-ctx.Done():
		stopped = true
		_ = c.Close()
		werr = <-done
	}
	out.Stdout, out.Stderr, out.Duration = stdout.String(), stderr.String(), time.Since(start)
	fail := &CommandError{Replica: r.Name, Command: command, Output: out}
	var ee *ssh.ExitError
	switch {
	case stopped && errors.Is(ctx.Err(), context.DeadlineExceeded):
		fail.TimedOut = true
		fail.Reason = fmt.Sprintf("timed out after %v and killed: connection closed, and timeout(1) on the replica kills it at %v", out.Duration.Round(time.Millisecond), limit)
		return out, fail
	case stopped && limit > 0:
		fail.Reason = fmt.Sprintf("stopped after %v: %v; timeout(1) on the replica kills it at %v", out.Duration.Round(time.Millisecond), context.Cause(ctx), limit)
		return out, fail
	case stopped:
		fail.Reason = fmt.Sprintf("stopped after %v: %v; with no timeout it may still be running on the replica", out.Duration.Round(time.Millisecond), context.Cause(ctx))
		return out, fail
	case werr == nil:
		out.ExitStatus = 0
		return out, nil
	case errors.As(werr, &ee):
		out.ExitStatus = ee.ExitStatus()
		fail.Output = out
		fail.Reason = fmt.Sprintf("exit status %d", ee.ExitStatus())
		if ee.Signal() != "" {
			fail.Reason = "killed by signal " + ee.Signal()
		}
		// timeout(1) SIGKILLs its own process group, so the shell that
		// sshd started reports either the signal or 128+9.
		if limit > 0 && (ee.Signal() == "KILL" || ee.ExitStatus() == 128+9) && time.Since(cmdStart) >= limit {
			fail.TimedOut = true
			fail.Reason = fmt.Sprintf("timed out after %v: killed on the replica by timeout(1)", out.Duration.Round(time.Millisecond))
		}
		return out, fail
	default:
		fail.Reason = werr.Error()
		return out, fail
	}
}

// remoteLimit wraps command so that the replica itself kills it, and every
// process it started in its process group, once limit is up, whether or not
// this client is still connected. It returns the wrapped command and the
// limit as enforced there, rounded up to whole seconds (the form every
// timeout(1), GNU and busybox, accepts).
//
// The alternatives do not stop a command. Measured against OpenSSH 9.2 as
// rollout/sshtest starts it, with 'sleep 3; echo late >> ran.txt':
//
//   - a "signal" channel request (RFC 4254 6.9), what ssh.Session.Signal
//     sends, is refused: sshd logs "session signalling requires privilege
//     separation" and the command writes "late";
//   - closing the session and the connection, without a pty: the command
//     runs on and writes "late";
//   - closing a session that has a pty: the hangup kills the command's
//     process group, so "late" is not written. But a command that ignores
//     SIGHUP (nohup, trap) survives it, and a pty merges stderr into stdout
//     and turns on pagers and prompts in the commands it runs, so it is not
//     used;
//   - timeout -s KILL N sh -c '...': timeout puts itself and the command in
//     a new process group and SIGKILLs the group after N seconds; "late"
//     is not written and no process is left.
func remoteLimit(command string, limit time.Duration) (string, time.Duration) {
	secs := max(int64(math.Ceil(limit.Seconds())), 1)
	return fmt.Sprintf("timeout -s KILL %d sh -c %s", secs, ShellQuote(command)), time.Duration(secs) * time.Second
}
