// Package loopback listens on 127.0.0.1 ports that a server can give up and
// bind again when it restarts.
//
// A port the kernel picks for 127.0.0.1:0 comes from the ephemeral range,
// the same range it draws source ports from for outgoing connections. A
// server that closes such a port to restart can find it taken by any
// connect on the machine in the meantime, and a busy machine (a load
// generator, a scraper, raft peers redialling) makes that a matter of time.
// Listen therefore picks a random port below the ephemeral range, which
// outgoing connections never use.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Ports are drawn from [poolStart, start of the ephemeral range), clear of
// the low ports well-known services use (Prometheus 9090, node exporter
// 9100, Grafana 3000).
const poolStart = 20000

// minPool is the smallest pool worth drawing from; a machine whose
// ephemeral range leaves less below it gets ports from the kernel instead.
const minPool = 1000

const attempts = 100

// Listen listens on a free 127.0.0.1 port below the ephemeral range, or on
// one the kernel picks when this machine's range leaves no room below it.
func Listen() (*net.TCPListener, error) {
	lo, hi, ok := Pool()
	if !ok {
		return listen("127.0.0.1:0")
	}
	var err error
	for range attempts {
		var ln *net.TCPListener
		if ln, err = listen(net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no free port in 127.0.0.1:%d-%d after %d attempts, last: %w", lo, hi-1, attempts, err)
}

func listen(addr string) (*net.TCPListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

// Pool returns [lo, hi), the ports Listen draws from: those below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range). ok is false when
// the range leaves too few.
func Pool() (lo, hi int, ok bool) {
	hi = 32768 // Linux's default start of the ephemeral range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				hi = v
			}
		}
	}
	return poolStart, hi, hi-poolStart >= minPool
}
