// Package testport reserves loopback TCP ports for test servers that run in
// another process (replicas, sshd, Prometheus) and must be told their port
// before they bind it, and that bind it again each time they restart.
//
// Ports come from package loopback, below the ephemeral range, so no
// outgoing connection can take one while its server is down. An flock on a
// per-port file keeps test binaries running side by side from handing out
// the same port twice.
package testport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/lanectl/lanectl/internal/loopback"
)

const attempts = 100

// Port is a reserved 127.0.0.1 port. It stays reserved against other
// Reserve calls, in any process, until Release.
type Port struct {
	Number int
	lock   *os.File
}

// Addr is "127.0.0.1:<port>".
func (p *Port) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.Number)) }

// Release gives the port back.
func (p *Port) Release() error {
	if p.lock == nil {
		return nil
	}
	err := p.lock.Close()
	p.lock = nil
	return err
}

// Reserve returns a port that nothing is bound to and that no other
// Reserve call holds.
func Reserve() (*Port, error) {
	dir := filepath.Join(os.TempDir(), "lanectl-testport")
	if err := os.MkdirAll(dir, 0o1777); err != nil {
		return nil, fmt.Errorf("testport: %w", err)
	}
	for range attempts {
		// Bound while the lock is taken, so the port is free of both.
		ln, err := loopback.Listen()
		if err != nil {
			return nil, fmt.Errorf("testport: %w", err)
		}
		n := ln.Addr().(*net.TCPAddr).Port
		lock, err := tryLock(filepath.Join(dir, strconv.Itoa(n)))
		if cerr := ln.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("testport: %w", err)
		}
		if lock != nil {
			return &Port{Number: n, lock: lock}, nil
		}
	}
	return nil, fmt.Errorf("testport: every port tried in %d attempts is held by another test", attempts)
}

// For reserves a port for the life of t.
func For(t testing.TB) *Port {
	t.Helper()
	p, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Release() })
	return p
}

// tryLock takes a non-blocking exclusive flock on path; nil, nil means
// someone else holds it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
