package replica

import (
	"strings"
	"testing"
)

func TestRaftID(t *testing.T) {
	tests := []struct {
		name string
		want uint64
		err  string
	}{
		{"n1", 1, ""},
		{"3", 3, ""},
		{"node-12", 12, ""},
		{"n", 0, "must end in a number"},
		{"", 0, "must end in a number"},
		{"n0", 0, "must not be 0"},
		{"n99999999999999999999", 0, "out of range"},
	}
	for _, tt := range tests {
		got, err := RaftID(tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("RaftID(%q): got %d %v, want error %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("RaftID(%q): got %d %v, want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestParsePeers(t *testing.T) {
	peers, err := ParsePeers("n1=127.0.0.1:7001, n2=127.0.0.1:7002")
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 || peers[1] != (Peer{Name: "n2", ID: 2, Addr: "127.0.0.1:7002"}) {
		t.Errorf("got %+v, want n1 and n2 with their addresses", peers)
	}
	bad := []struct{ in, err string }{
		{"", "no peers"},
		{"n1", "peer 1 \"n1\": want NAME=HOST:PORT"},
		{"n1=127.0.0.1:1,x=127.0.0.1:2", "peer 2: replica name \"x\" must end in a number"},
		{"n1=127.0.0.1:1,node1=127.0.0.1:2", "\"n1\" and \"node1\" both map to raft ID 1"},
		{"n1=localhost", "peer 1 \"n1\": address"},
	}
	for _, tt := range bad {
		if _, err := ParsePeers(tt.in); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParsePeers(%q): got %v, want error containing %q", tt.in, err, tt.err)
		}
	}
}
