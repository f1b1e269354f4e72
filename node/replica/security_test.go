package replica_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/internal/testpki"
	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/node/transport"
)

// secureCluster is a cluster of replicas started with replica.New, each
// with its own certificates, run until the test ends.
type secureCluster struct {
	t    *testing.T
	reps []*replica.Replica
}

// startReplicas starts n replicas named n1..nn on loopback; tune adjusts
// replica i's config before it is created.
func startReplicas(t *testing.T, n int, tune func(i int, c *replica.Config)) *secureCluster {
	t.Helper()
	var raftLns, httpLns []net.Listener
	var peers []replica.Peer
	for i := range n {
		rl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		raftLns, httpLns = append(raftLns, rl), append(httpLns, hl)
		peers = append(peers, replica.Peer{Name: fmt.Sprintf("n%d", i+1), ID: uint64(i + 1), Addr: rl.Addr().String()})
	}
	c := &secureCluster{t: t}
	for i := range n {
		cfg := replica.Config{
			Name:         peers[i].Name,
			Peers:        peers,
			RaftListener: raftLns[i],
			HTTPListener: httpLns[i],
			HTTPAddr:     httpLns[i].Addr().String(),
			DataDir:      t.TempDir(),
			Mode:         lanes.ModeFourLane,
			TickInterval: 20 * time.Millisecond,
		}
		if tune != nil {
			tune(i, &cfg)
		}
		rep, err := replica.New(cfg)
		if err != nil {
			t.Fatalf("start %s: %v", cfg.Name, err)
		}
		ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
		done := make(chan error, 1)
		go func() { done <- rep.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run %s: %v", cfg.Name, err)
			}
		})
		c.reps = append(c.reps, rep)
	}
	return c
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLeader waits until one of the replicas in among leads and all of them
// agree, and returns its index.
func (c *secureCluster) waitLeader(among ...int) int {
	c.t.Helper()
	lead := -1
	waitFor(c.t, waitLong, func() (bool, string) {
		first := c.reps[among[0]].Status()
		for _, i := range among {
			st := c.reps[i].Status()
			if st.LeaderRaftID == 0 || st.LeaderRaftID != first.LeaderRaftID {
				return false, fmt.Sprintf("%s sees leader %q in term %d", st.ID, st.Leader, st.Term)
			}
		}
		lead = int(first.LeaderRaftID) - 1
		return true, ""
	})
	return lead
}

// pkiFor makes the members' CA, the HTTP API's CA and certificates for n
// replicas.
type pki struct {
	peers, http *testpki.CA
}

func newPKI(t *testing.T) pki {
	return pki{peers: testpki.NewCA(t, "lanectl members"), http: testpki.NewCA(t, "lanectl HTTP clients")}
}

func (p pki) tune(t *testing.T, peerCert func(i int) testpki.Cert) func(int, *replica.Config) {
	return func(i int, c *replica.Config) {
		c.PeerTLS = &tls.Config{Certificates: []tls.Certificate{peerCert(i).TLS}, RootCAs: p.peers.Pool()}
		c.HTTPTLS = &tls.Config{Certificates: []tls.Certificate{p.http.Node(t, c.Name).TLS}, ClientCAs: p.http.Pool()}
		c.HTTPToken = "s3cret-token"
	}
}

// client is an HTTPS client of the replicas' API; cert nil presents none.
func (p pki) client(cert *testpki.Cert) *http.Client {
	c := &tls.Config{RootCAs: p.http.Pool()}
	if cert != nil {
		c.Certificates = []tls.Certificate{cert.TLS}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: c}}
}

func do(t *testing.T, cl *http.Client, method, url, token string, body []byte) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestMutualTLSClusterElectsAndReplicates(t *testing.T) {
	p := newPKI(t)
	c := startReplicas(t, 3, p.tune(t, func(i int) testpki.Cert { return p.peers.Node(t, fmt.Sprintf("n%d", i+1)) }))
	lead := c.waitLeader(0, 1, 2)
	operator := p.http.Client(t, "operator")
	cl := p.client(&operator)
	url := "https://" + c.reps[lead].HTTPAddr().String() + "/kv/greeting"
	code, body, err := do(t, cl, http.MethodPut, url, "s3cret-token", []byte("hello over mTLS"))
	if err != nil || code != http.StatusOK {
		t.Fatalf("PUT through the leader: %d %q %v", code, body, err)
	}
	for i, r := range c.reps {
		waitFor(t, waitLong, func() (bool, string) {
			v, ok := r.Get("greeting")
			return ok && string(v) == "hello over mTLS", fmt.Sprintf("n%d has %q (%v)", i+1, v, ok)
		})
	}
}

func TestPeerWithAnotherNodesCertificateIsRefused(t *testing.T) {
	p := newPKI(t)
	// n3 holds a valid certificate of the right CA, but it names n2.
	c := startReplicas(t, 3, p.tune(t, func(i int) testpki.Cert { return p.peers.Node(t, []string{"n1", "n2", "n2"}[i]) }))
	lead := c.waitLeader(0, 1)
	if _, err := c.reps[lead].Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatalf("put on the two honest members: %v", err)
	}
	for _, i := range []int{0, 1} {
		waitFor(t, waitLong, func() (bool, string) {
			_, ok := c.reps[i].Get("k")
			return ok, fmt.Sprintf("n%d has not applied the write", i+1)
		})
	}
	// Within many election timeouts n3 neither learns the leader nor gets
	// the write: the members refuse its connections, and it refuses theirs.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		st := c.reps[2].Status()
		if st.LeaderRaftID != 0 {
			t.Fatalf("n3, whose certificate names n2, learned leader %s", st.Leader)
		}
		if _, ok := c.reps[2].Get("k"); ok {
			t.Fatal("n3, whose certificate names n2, got the write")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// strangerFrames is what a stranger who learned the wire format sends: a
// preamble from node from to node to on the heartbeat lane, a heartbeat at
// term 1000 and an append of one entry that would write key pwned.
func strangerFrames(t *testing.T, from, to uint64) []byte {
	t.Helper()
	var b []byte
	b = append(b, "LNRT"...)
	b = append(b, 2, byte(lanes.LaneHeartbeat), 0, 0)
	b = binary.BigEndian.AppendUint64(b, from)
	b = binary.BigEndian.AppendUint64(b, to)
	castagnoli := crc32.MakeTable(crc32.Castagnoli)
	frame := func(m *raftpb.Message) {
		mb, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		payload := append(binary.BigEndian.AppendUint64(nil, 0), mb...)
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(payload)))
		b = binary.BigEndian.AppendUint32(b, crc32.Checksum(payload, castagnoli))
		b = append(b, payload...)
	}
	frame(&raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1000)})
	frame(&raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1000),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(1000), Index: proto.Uint64(2), Data: []byte("pwned")}}})
	return b
}

func TestStrangerCannotMoveTheLeader(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name  string
		n     int
		tune  func(int, *replica.Config)
		want  string // in the rejection the stranger reads; "" when the connection just closes
		https bool
	}{
		{"single plaintext replica on loopback", 1, nil, "node 99 is not a member of this cluster", false},
		{"mutual TLS cluster", 3, p.tune(t, func(i int) testpki.Cert { return p.peers.Node(t, fmt.Sprintf("n%d", i+1)) }), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startReplicas(t, tc.n, tc.tune)
			members := make([]int, tc.n)
			for i := range members {
				members[i] = i
			}
			lead := c.waitLeader(members...)
			before := c.reps[lead].Status()

			conn, err := net.Dial("tcp", c.reps[lead].RaftAddr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = conn.Write(strangerFrames(t, 99, uint64(lead+1)))
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			answer, err := io.ReadAll(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the stranger's connection is still open after 10s")
			}
			if !strings.Contains(string(answer), tc.want) {
				t.Errorf("the stranger read %q, want it to contain %q", answer, tc.want)
			}

			// The leader goes on leading in its own term: a heartbeat at
			// term 1000 would have made it a follower in term 1000.
			for range 10 {
				st := c.reps[lead].Status()
				if st.Term != before.Term || st.Role != "leader" {
					t.Fatalf("after the stranger: %s is %s in term %d, was leader in term %d", st.ID, st.Role, st.Term, before.Term)
				}
				time.Sleep(3 * 20 * time.Millisecond)
			}
			if _, ok := c.reps[lead].Get("pwned"); ok {
				t.Fatal("the stranger's append was applied")
			}
			// Nor did its made-up id become a label value.
			fams, err := c.reps[lead].Registry().Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fams {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "peer" && !slices.Contains([]string{"n1", "n2", "n3"}, l.GetValue()) {
							t.Errorf("%s has peer=%q", f.GetName(), l.GetValue())
						}
					}
				}
			}
		})
	}
}

func TestHTTPRefusesClientsWithoutCertificateOrToken(t *testing.T) {
	p := newPKI(t)
	c := startReplicas(t, 1, p.tune(t, func(int) testpki.Cert { return p.peers.Node(t, "n1") }))
	c.waitLeader(0)
	base := "https://" + c.reps[0].HTTPAddr().String()
	operator := p.http.Client(t, "operator")
	withCert := p.client(&operator)
	foreign := testpki.NewCA(t, "someone else").Client(t, "operator")

	if _, _, err := do(t, p.client(nil), http.MethodGet, base+"/status", "", nil); err == nil {
		t.Error("GET /status without a client certificate was served")
	}
	if _, _, err := do(t, p.client(&foreign), http.MethodGet, base+"/status", "", nil); err == nil {
		t.Error("GET /status with a certificate from a foreign CA was served")
	}
	tests := []struct {
		method, path, token string
		want                int
	}{
		{http.MethodGet, "/status", "", http.StatusOK},
		{http.MethodPut, "/kv/k", "", http.StatusUnauthorized},
		{http.MethodPut, "/kv/k", "wrong", http.StatusUnauthorized},
		{http.MethodPost, "/admin/snapshot?peer=n1", "", http.StatusUnauthorized},
		{http.MethodPut, "/kv/k", "s3cret-token", http.StatusOK},
		{http.MethodGet, "/kv/k", "", http.StatusOK},
	}
	for _, tc := range tests {
		code, body, err := do(t, withCert, tc.method, base+tc.path, tc.token, []byte("v"))
		if err != nil || code != tc.want {
			t.Errorf("%s %s with token %q: got %d %q %v, want %d", tc.method, tc.path, tc.token, code, body, err, tc.want)
		}
	}
}

func TestHTTPCutsOffATrickledBody(t *testing.T) {
	const readTimeout = time.Second
	c := startReplicas(t, 1, func(_ int, cfg *replica.Config) { cfg.HTTPReadTimeout = readTimeout })
	c.waitLeader(0)
	conn, err := net.Dial("tcp", c.reps[0].HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "PUT /kv/slow HTTP/1.1\r\nHost: replica\r\nContent-Length: 100\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("x")); err != nil {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-trickled }()
	// Read until the server closes the connection; the read itself is the
	// poll, and its deadline the most the test waits.
	limit := 10 * readTimeout
	_ = conn.SetReadDeadline(time.Now().Add(limit))
	answer, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a PUT trickled at 1 byte/s is still open after %v (read timeout %v)", limit, readTimeout)
	}
	t.Logf("server closed the trickled PUT after %v (read timeout %v), answering %q", time.Since(start).Round(10*time.Millisecond), readTimeout, answer)
	if _, ok := c.reps[0].Get("slow"); ok {
		t.Error("the trickled PUT was applied")
	}
}

func TestRefusesPlaintextBeyondLoopback(t *testing.T) {
	for _, tc := range []struct {
		name string
		tune func(c *replica.Config)
		want string
	}{
		{"raft", func(c *replica.Config) {
			_ = c.RaftListener.Close()
			c.RaftListener, c.ListenAddr = nil, ":0"
		}, "transport on "},
		{"HTTP", func(c *replica.Config) {
			_ = c.HTTPListener.Close()
			c.HTTPListener, c.HTTPAddr = nil, ":0"
		}, "HTTP API on "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rl, _ := net.Listen("tcp", "127.0.0.1:0")
			hl, _ := net.Listen("tcp", "127.0.0.1:0")
			cfg := replica.Config{Name: "n1", Peers: []replica.Peer{{Name: "n1", ID: 1, Addr: rl.Addr().String()}},
				RaftListener: rl, HTTPListener: hl, HTTPAddr: hl.Addr().String(), DataDir: t.TempDir(), Mode: lanes.ModeFourLane}
			tc.tune(&cfg)
			_, err := replica.New(cfg)
			if !errors.Is(err, transport.ErrInsecureListen) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInsecureListen containing %q", err, tc.want)
			}
			cfg.Insecure = true
			cfg.DataDir = t.TempDir()
			if tc.name == "raft" {
				cfg.HTTPListener, _ = net.Listen("tcp", "127.0.0.1:0")
			} else {
				cfg.RaftListener, _ = net.Listen("tcp", "127.0.0.1:0")
			}
			rep, err := replica.New(cfg)
			if err != nil {
				t.Fatalf("with Insecure: %v", err)
			}
			if err := rep.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
