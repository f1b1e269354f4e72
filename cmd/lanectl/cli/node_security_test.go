package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/internal/testpki"
	"github.com/lanectl/lanectl/node/replica/status"
)

func TestNodeRunWithMutualTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	peerCA, httpCA := testpki.NewCA(t, "members"), testpki.NewCA(t, "http clients")
	peer := peerCA.WriteFiles(t, dir, "n1-peer", peerCA.Node(t, "n1"))
	srv := httpCA.WriteFiles(t, dir, "n1-http", httpCA.Node(t, "n1"))
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errOut lockedBuffer
	streams := &IOStreams{In: strings.NewReader(""), Out: io.Discard, ErrOut: &errOut}
	root := NewCmdRoot(streams, func(string) string { return "" })
	root.SetArgs([]string{"node", "run", "--id", "n1", "--peers", "n1=127.0.0.1:0", "--http", "127.0.0.1:0",
		"--data", filepath.Join(dir, "n1"), "--tick", "20ms",
		"--peer-cert", peer.Cert, "--peer-key", peer.Key, "--peer-ca", peer.CA,
		"--http-cert", srv.Cert, "--http-key", srv.Key, "--http-ca", srv.CA,
		"--http-token-file", tokenFile})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node run: %v", err)
		}
	}()

	httpAddr := regexp.MustCompile(`http=(127\.0\.0\.1:\d+)`)
	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" && time.Now().Before(deadline) {
		if m := httpAddr.FindStringSubmatch(errOut.String()); m != nil {
			base = "https://" + m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("no 'replica running' log line; stderr:\n%s", errOut.String())
	}
	operator := httpCA.Client(t, "operator")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: httpCA.Pool(), Certificates: []tls.Certificate{operator.TLS}}}}
	defer client.CloseIdleConnections()
	var st status.Replica
	for time.Now().Before(deadline) {
		resp, err := client.Get(base + "/status")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if err == nil && st.Role == "leader" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Role != "leader" {
		t.Fatalf("got status %+v, want n1 leading", st)
	}
	for _, tc := range []struct {
		token string
		want  int
	}{{"", http.StatusUnauthorized}, {"s3cre", http.StatusUnauthorized}, {"s3cret", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodPut, base+"/kv/k", bytes.NewReader([]byte("v")))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("PUT with token %q: %v", tc.token, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("PUT with token %q: got %d, want %d", tc.token, resp.StatusCode, tc.want)
		}
	}
	noCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: httpCA.Pool()}}}
	if resp, err := noCert.Get(base + "/status"); err == nil {
		resp.Body.Close()
		t.Error("GET /status without a client certificate was served")
	}

	// lanectl load reaches the replica through an HTTP client config with
	// the client certificate and the token; without it every write fails.
	loader := httpCA.WriteFiles(t, dir, "load", httpCA.Client(t, "load"))
	clientCfg := filepath.Join(dir, "load-client.yml")
	cfgBody := "tls_config: {ca_file: " + loader.CA + ", cert_file: " + loader.Cert + ", key_file: " + loader.Key + "}\n" +
		"authorization: {credentials_file: " + tokenFile + "}\n"
	if err := os.WriteFile(clientCfg, []byte(cfgBody), 0o600); err != nil {
		t.Fatal(err)
	}
	load := []string{"load", "--targets", base, "--rate", "20", "--duration", "1s", "-o", "json"}
	stdout, stderr, code := runRoot(t, append(load, "--http-config", clientCfg)...)
	var res struct {
		WritesOK int64 `json:"writes_ok"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != ExitOK || err != nil || res.WritesOK == 0 {
		t.Errorf("load with --http-config: exit %d, %d writes ok (%v); stderr %q", code, res.WritesOK, err, stderr)
	}
	if _, stderr, code := runRoot(t, load...); code != ExitOperational || !strings.Contains(stderr, "writes failed") {
		t.Errorf("load without --http-config: exit %d, stderr %q; want exit %d, every write failed", code, stderr, ExitOperational)
	}
	if _, stderr, code := runRoot(t, append(load, "--http-config", filepath.Join(dir, "nope.yml"))...); code != ExitOperational || !strings.Contains(stderr, "--http-config") {
		t.Errorf("load with a missing --http-config: exit %d, stderr %q", code, stderr)
	}
}

func TestNodeRunSecurityFlagErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"node", "run", "--id", "n1", "--http", "127.0.0.1:0", "--data", filepath.Join(dir, "n1")}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"plaintext raft beyond loopback", []string{"--peers", "n1=0.0.0.0:0"},
			"transport on 0.0.0.0:0 (bound "},
		{"half a peer certificate", []string{"--peers", "n1=127.0.0.1:0", "--peer-cert", "c.pem"},
			"--peer-cert also need --peer-key, --peer-ca"},
		{"client CA without a server certificate", []string{"--peers", "n1=127.0.0.1:0", "--http-ca", "ca.pem"},
			"--http-ca needs --http-cert and --http-key"},
		{"missing token file", []string{"--peers", "n1=127.0.0.1:0", "--http-token-file", filepath.Join(dir, "nope")},
			"--http-token-file: open "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runRoot(t, append(base, tc.args...)...)
			if code != ExitOperational || !strings.Contains(stderr, tc.want) {
				t.Errorf("got exit %d, stderr %q; want exit %d containing %q", code, stderr, ExitOperational, tc.want)
			}
		})
	}
}
