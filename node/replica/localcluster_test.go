package replica

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/internal/loopback"
	"github.com/lanectl/lanectl/lanes"
)

// A local cluster restarts a replica with the environment it is given, as a
// service restart rereads its env file, and refuses to start anything once
// closed.
func TestLocalClusterRestartAndClose(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	c, err := StartLocalCluster(t.Context(), LocalClusterConfig{
		Replicas:     1,
		Dir:          t.TempDir(),
		TickInterval: 20 * time.Millisecond,
		ElectionTick: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Replica(0).Status().LanesEnabled; got {
		t.Errorf("first start with no environment: lanes enabled %v, want false", got)
	}
	url := c.URL(0)
	// Below the ephemeral range, where no outgoing connection can take
	// the ports while the replica is down.
	lo, hi, _ := loopback.Pool()
	for _, addr := range []string{strings.TrimPrefix(url, "http://"), c.RaftAddr(0)} {
		_, port, _ := net.SplitHostPort(addr)
		if n, _ := strconv.Atoi(port); n < lo || n >= hi {
			t.Errorf("%s: port outside [%d, %d)", addr, lo, hi)
		}
	}
	if err := c.Restart(0, LocalStart{Getenv: env(map[string]string{lanes.FlagEnv: "1"})}); err != nil {
		t.Fatal(err)
	}
	if got := c.Replica(0).Status().LanesEnabled; !got {
		t.Errorf("after a restart with %s=1: lanes enabled %v, want true", lanes.FlagEnv, got)
	}
	if c.URL(0) != url {
		t.Errorf("URL changed across a restart: %s, then %s", url, c.URL(0))
	}
	if i, ok := c.Index("n1"); !ok || i != 0 {
		t.Errorf("Index(n1) = %d, %v; want 0, true", i, ok)
	}
	if _, ok := c.Index("n9"); ok {
		t.Error("Index(n9) found a replica that does not exist")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if c.Replica(0) != nil {
		t.Error("replica still running after Close")
	}
	if err := c.Restart(0, LocalStart{}); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("restart after close: got %v, want a refusal", err)
	}
}

func TestStartLocalClusterRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  LocalClusterConfig
		want string
	}{
		{"no replicas", LocalClusterConfig{Dir: t.TempDir()}, "local cluster of 0 replicas"},
		{"no dir", LocalClusterConfig{Replicas: 1}, "no directory"},
		{"bad ticks", LocalClusterConfig{Replicas: 2, Dir: t.TempDir(), HeartbeatTick: 5, ElectionTick: 5}, "start n1: replica config: election tick 5 must exceed heartbeat tick 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := StartLocalCluster(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || c != nil {
				t.Fatalf("got %v, %v; want an error containing %q", c, err, tt.want)
			}
		})
	}
}
