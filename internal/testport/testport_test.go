package testport

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReserveGivesDistinctBindablePorts(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := For(t)
		if seen[p.Number] {
			t.Fatalf("port %d handed out twice while reserved", p.Number)
		}
		seen[p.Number] = true
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
