package loopback

import (
	"net"
	"testing"
)

func TestListenPicksDistinctPortsBelowTheEphemeralRange(t *testing.T) {
	lo, hi, ok := Pool()
	if !ok {
		t.Fatalf("ephemeral range starts at %d: no pool below it on this machine", hi)
	}
	seen := map[int]bool{}
	for range 50 {
		ln, err := Listen()
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		if seen[port] {
			t.Fatalf("port %d handed out twice while bound", port)
		}
		seen[port] = true
		if port < lo || port >= hi {
			t.Fatalf("port %d outside the pool [%d, %d)", port, lo, hi)
		}
		if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
			t.Fatalf("listening on %s, want loopback", ip)
		}
	}
}
