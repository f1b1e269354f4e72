// Package testport reserves loopback TCP ports for test servers that run in
// another process (replicas, sshd, Prometheus) and must be told their port
// before they bind it, and that may rebind it when they restart.
//
// Asking the kernel for a free port (binding 127.0.0.1:0 and closing it) is
// not enough for that: the kernel hands out such ports from the ephemeral
// range, the same range it draws source ports from for outgoing
// connections, so between the close and the server's bind (or while a
// server restarts) any connect on the machine can take the port. Under a
// busy parallel test run that happens. Reserve therefore picks ports below
// the ephemeral range, which outgoing connections never use, and takes an
// flock on a per-port file so that test processes running side by side
// never hand out the same port twice. A port is checked to be bindable
// before it is returned.
package testport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Ports are drawn from [poolStart, start of the ephemeral range), which
// keeps clear of the low ports well-known services use (Prometheus 9090,
// node exporter 9100, Grafana 3000).
const poolStart = 20000

// minPool is the smallest pool worth drawing from; a machine whose
// ephemeral range leaves less below it gets ports from the kernel instead.
const minPool = 1000

const attempts = 200

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
	lo, hi, ok := pool()
	for range attempts {
		n := 0
		if ok {
			n = lo + rand.IntN(hi-lo)
		} else {
			var err error
			if n, err = kernelPort(); err != nil {
				return nil, err
			}
		}
		lock, err := tryLock(filepath.Join(dir, strconv.Itoa(n)))
		if err != nil {
			return nil, err
		}
		if lock == nil {
			continue
		}
		if bindable(n) {
			return &Port{Number: n, lock: lock}, nil
		}
		_ = lock.Close()
	}
	return nil, fmt.Errorf("testport: no free loopback port after %d attempts", attempts)
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

// pool returns [lo, hi): the ports below the kernel's ephemeral range.
func pool() (lo, hi int, ok bool) {
	hi = 32768 // Linux's default ip_local_port_range start
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	return poolStart, hi, hi-poolStart >= minPool
}

// tryLock takes a non-blocking exclusive flock on path; nil, nil means
// another process holds it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("testport: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, nil
		}
		return nil, fmt.Errorf("testport: lock %s: %w", path, err)
	}
	return f, nil
}

func bindable(n int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
