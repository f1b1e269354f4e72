package testport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReserveGivesDistinctBindablePortsOutsideTheEphemeralRange(t *testing.T) {
	lo, hi, ok := pool()
	if !ok {
		t.Fatalf("ephemeral range starts at %d: no pool below it on this machine", hi)
	}
	seen := map[int]bool{}
	for range 50 {
		p := For(t)
		if seen[p.Number] {
			t.Fatalf("port %d handed out twice while reserved", p.Number)
		}
		seen[p.Number] = true
		if p.Number < lo || p.Number >= hi {
			t.Fatalf("port %d outside the pool [%d, %d)", p.Number, lo, hi)
		}
		l, err := net.Listen("tcp", p.Addr())
		if err != nil {
			t.Fatalf("reserved port %s cannot be bound: %v", p.Addr(), err)
		}
		l.Close()
	}
}

func TestReservationExcludesOthersUntilReleased(t *testing.T) {
	p, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), "lanectl-testport", strconv.Itoa(p.Number))
	// A second open file description conflicts with the first exactly as
	// another process's would.
	if f, err := tryLock(path); err != nil || f != nil {
		t.Fatalf("lock on a reserved port: %v, %v; want it refused", f, err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	f, err := tryLock(path)
	if err != nil || f == nil {
		t.Fatalf("lock after release: %v, %v; want it granted", f, err)
	}
	f.Close()
}

func TestReserveSkipsABoundPort(t *testing.T) {
	p := For(t)
	l, err := net.Listen("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if bindable(p.Number) {
		t.Fatalf("port %d reported bindable while a listener holds it", p.Number)
	}
}
