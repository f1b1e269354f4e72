// Package testserver runs a real server binary for a test (Prometheus,
// VictoriaMetrics, Alertmanager) on a reserved 127.0.0.1 port and waits
// until it answers its readiness path. The helpers promtest, vmtest and
// alertmanagertest are built on it; it is test support and must never be
// imported by non-test code.
package testserver

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lanectl/lanectl/internal/testport"
)

// Spec says how to run one server.
type Spec struct {
	// Name is the server's name in messages and its log file's name:
	// <Dir>/<Name>.log.
	Name string
	// Bin is the binary, with the Debian package that installs it.
	Bin, Package string
	// Dir holds the log (and whatever Args puts there).
	Dir string
	// Args are the command-line arguments for a server listening on addr
	// (host:port).
	Args func(addr string) []string
	// ReadyPath answers 200 once the server is ready, e.g. /-/ready.
	ReadyPath string
	// ReadyTimeout bounds the wait for it; zero means 60s.
	ReadyTimeout time.Duration
}

// Process is a running server.
type Process struct {
	// Addr is host:port; URL is http://Addr.
	Addr, URL string
	stop      func()
}

// Stop ends the server (SIGTERM, then SIGKILL after 10s) and releases its
// port. It may be called more than once.
func (p *Process) Stop() { p.stop() }

// attempts is how often Launch tries: the port is reserved (see testport),
// but a process outside the test run may still bind it first.
const attempts = 3

// Launch starts the server and waits until it is ready.
func Launch(s Spec) (*Process, error) {
	if _, err := os.Stat(s.Bin); err != nil {
		return nil, fmt.Errorf("%s is missing (apt-get install %s): %w", s.Bin, s.Package, err)
	}
	var errs []error
	for range attempts {
		p, err := launch(s)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func launch(s Spec) (*Process, error) {
	port, err := testport.Reserve()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(s.Dir, s.Name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		_ = port.Release()
		return nil, err
	}
	cmd := exec.Command(s.Bin, s.Args(port.Addr())...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		_ = port.Release()
		return nil, fmt.Errorf("start %s: %w", s.Bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	var once sync.Once
	p := &Process{Addr: port.Addr(), URL: "http://" + port.Addr()}
	p.stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			_ = port.Release()
		})
	}
	timeout := s.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-exited:
			_ = port.Release()
			return nil, fmt.Errorf("%s exited before it was ready (%v); log:\n%s", s.Name, err, Tail(logPath))
		default:
		}
		if resp, err := client.Get(p.URL + s.ReadyPath); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s on %s not ready after %v; log:\n%s", s.Name, p.Addr, timeout, Tail(logPath))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Tail is the end of a log file, for a failure message.
func Tail(path string) string {
	b, _ := os.ReadFile(path)
	return string(b[max(0, len(b)-4000):])
}
