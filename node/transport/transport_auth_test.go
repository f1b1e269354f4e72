package transport

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/lanectl/lanectl/internal/testpki"
	"github.com/lanectl/lanectl/lanes"
)

// nodeNames are the identities the test certificates of nodes 1-3 carry.
var nodeNames = map[uint64]string{1: "n1", 2: "n2", 3: "n3"}

func peerTLS(ca *testpki.CA, c testpki.Cert) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{c.TLS}, RootCAs: ca.Pool()}
}

// sendUntilError sends a heartbeat from 1 to 2 until a send fails (a
// refusal can arrive after the first write was accepted by the kernel) and
// returns that error.
func sendUntilError(t *testing.T, tx *TCP) error {
	t.Helper()
	for range 200 {
		if err := tx.Send(t.Context(), lanes.LaneHeartbeat, 0, raftMsg(raftpb.MessageType_MsgHeartbeat, 1, 2)); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("every send succeeded, want the peer to refuse the connection")
	return nil
}

func TestCertIdentityOfTestCertificates(t *testing.T) {
	ca := testpki.NewCA(t, "members")
	for _, tc := range []struct {
		cert testpki.Cert
		want string
	}{
		{ca.Node(t, "n2"), "n2"},
		{ca.Client(t, "prometheus"), ""},
	} {
		got, err := CertIdentity(tc.cert.TLS.Leaf)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("CertIdentity(%s): got %q, %v; want %q", tc.cert.TLS.Leaf.Subject.CommonName, got, err, tc.want)
		}
	}
}

func TestTransportMutualTLSCarriesEveryLane(t *testing.T) {
	ca := testpki.NewCA(t, "members")
	tx, _, in := transportPair(t,
		Config{TLS: peerTLS(ca, ca.Node(t, "n1")), Names: nodeNames, ChunkSize: 64 << 10},
		Config{TLS: peerTLS(ca, ca.Node(t, "n2")), Names: nodeNames})
	for _, lane := range []lanes.Lane{lanes.LaneHeartbeat, lanes.LaneReplication, lanes.LaneOther} {
		if err := tx.Send(t.Context(), lane, 0, raftMsg(raftpb.MessageType_MsgApp, 1, 2)); err != nil {
			t.Fatalf("send on %s: %v", lane, err)
		}
		if got := in.next(t); got.GetType() != raftpb.MessageType_MsgApp {
			t.Fatalf("got %s, want MsgApp", got.GetType())
		}
	}
	snap := snapshotMsg(1, 2, 300<<10, 1)
	if err := tx.Send(t.Context(), lanes.LaneSnapshot, 0, snap); err != nil {
		t.Fatalf("send snapshot: %v", err)
	}
	if got := in.next(t); !proto.Equal(got, snap) {
		t.Fatal("snapshot arrived changed")
	}
}

func TestTransportRefusesWrongCertificates(t *testing.T) {
	ca := testpki.NewCA(t, "members")
	foreign := testpki.NewCA(t, "someone else")
	tests := []struct {
		name             string
		sender, receiver *tls.Config
		want             string
	}{
		{"sender's certificate names another member", peerTLS(ca, ca.Node(t, "n3")), peerTLS(ca, ca.Node(t, "n2")),
			`certificate names node "n3", but the connection claims node 1 ("n1")`},
		{"sender's certificate has no node identity", peerTLS(ca, ca.Client(t, "n1")), peerTLS(ca, ca.Node(t, "n2")),
			`has no lanectl-node: URI SAN`},
		{"receiver's certificate names another member", peerTLS(ca, ca.Node(t, "n1")), peerTLS(ca, ca.Node(t, "n3")),
			`certificate names node "n3", but the connection claims node 2 ("n2")`},
		{"sender's certificate from a foreign CA", &tls.Config{Certificates: []tls.Certificate{foreign.Node(t, "n1").TLS}, RootCAs: ca.Pool()},
			peerTLS(ca, ca.Node(t, "n2")), `remote error: tls: `},
		{"receiver's certificate from a foreign CA", peerTLS(ca, ca.Node(t, "n1")), peerTLS(foreign, foreign.Node(t, "n2")),
			`certificate signed by unknown authority`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tx, _, in := transportPair(t,
				Config{TLS: tc.sender, Names: nodeNames, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond},
				Config{TLS: tc.receiver, Names: nodeNames})
			err := sendUntilError(t, tx)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			in.empty(t)
		})
	}
}

func TestTransportRefusesStrangers(t *testing.T) {
	hb := raftMsg(raftpb.MessageType_MsgHeartbeat, 9, 2)
	hb.Term = proto.Uint64(1000)
	forged := func(from uint64, m *raftpb.Message) []byte {
		pre := preamble{version: wireVersion, lane: lanes.LaneHeartbeat, from: from, to: 2}.marshal()
		return append(pre, encodeFrame(frameMessage, append(make([]byte, groupPrefix), marshalMsg(t, m)...))...)
	}
	t.Run("plaintext from an unknown id", func(t *testing.T) {
		in := newInbox()
		rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer})
		c := rawTransportConn(t, rx)
		if _, err := c.Write(forged(9, hb)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got, want := readRejection(t, c), "node 9 is not a member of this cluster"; !strings.Contains(got, want) {
			t.Errorf("got reason %q, want it to contain %q", got, want)
		}
		in.empty(t)
	})
	t.Run("plaintext to a TLS listener", func(t *testing.T) {
		ca := testpki.NewCA(t, "members")
		in := newInbox()
		rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: senderPeer, TLS: peerTLS(ca, ca.Node(t, "n2")), Names: nodeNames})
		c := rawTransportConn(t, rx)
		hb.From = proto.Uint64(1)
		if _, err := c.Write(forged(1, hb)); err != nil {
			t.Fatalf("write: %v", err)
		}
		waitClosed(t, c, 10*time.Second)
		in.empty(t)
	})
	t.Run("a member's id over a connection authenticated as another member", func(t *testing.T) {
		ca := testpki.NewCA(t, "members")
		in := newInbox()
		rx := startTransport(t, Config{ID: 2, Handler: in.handle, Peers: map[uint64]string{1: "127.0.0.1:1", 3: "127.0.0.1:3"},
			TLS: peerTLS(ca, ca.Node(t, "n2")), Names: nodeNames})
		n1 := peerTLS(ca, ca.Node(t, "n1"))
		n1.InsecureSkipVerify = true // this test plays node 1 by hand; the transport's own checks are tested above
		c, err := tls.Dial("tcp", rx.Addr().String(), n1)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		asN3 := raftMsg(raftpb.MessageType_MsgApp, 3, 2)
		if _, err := c.Write(forged(1, asN3)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got, want := readRejection(t, c), "MsgApp from 3 to 2 on a connection from 1 to 2"; !strings.Contains(got, want) {
			t.Errorf("got reason %q, want it to contain %q", got, want)
		}
		in.empty(t)
	})
}

func TestTransportRefusesPlaintextBeyondLoopback(t *testing.T) {
	h := newInbox().handle
	_, err := New(Config{ID: 1, Listen: ":0", Handler: h})
	if !errors.Is(err, ErrInsecureListen) || !strings.Contains(err.Error(), "transport on ") {
		t.Fatalf("got %v, want ErrInsecureListen naming the address", err)
	}
	tr, err := New(Config{ID: 1, Listen: ":0", Handler: h, Insecure: true})
	if err != nil {
		t.Fatalf("with Insecure: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
}

// waitClosed reads c until the other end closes it, failing the test if
// that takes longer than within.
func waitClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	if err := closedWithin(c, within); err != nil {
		t.Fatal(err)
	}
}

// closedWithin reads c until the other end closes it, or within passes.
func closedWithin(c net.Conn, within time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("connection still open after %v", within)
	}
	return nil
}
