// Package testpki makes real X.509 certificates for tests: a CA, node
// certificates that name a lanectl node the way the raft transport expects
// (URI SAN "lanectl-node:<name>"), and client certificates for the HTTP API.
//
// Keys are ECDSA P-256 so a test makes dozens in milliseconds. Every
// certificate is valid for 127.0.0.1, ::1 and localhost, for an hour on
// either side of now. It is for tests only: nothing here is fit to protect a
// real cluster, and it never writes outside the directory a test gives it.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a certificate authority made for one test.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// Cert is an issued certificate with its key, parsed and as PEM.
type Cert struct {
	TLS     tls.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA makes a self-signed CA called name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testpki: create CA %s: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parse CA %s: %v", name, err)
	}
	return &CA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// Pool is a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// PEM is the CA certificate in PEM.
func (ca *CA) PEM() []byte { return ca.pem }

// Node issues a certificate for lanectl node name: URI SAN
// "lanectl-node:<name>", usable as both server and client (a raft peer is
// both).
func (ca *CA) Node(t testing.TB, name string) Cert {
	t.Helper()
	return ca.issue(t, name, []*url.URL{{Scheme: "lanectl-node", Opaque: name}})
}

// Client issues a certificate without a node identity, as an HTTP API client
// (an operator, Prometheus) would carry.
func (ca *CA) Client(t testing.TB, name string) Cert {
	t.Helper()
	return ca.issue(t, name, nil)
}

func (ca *CA) issue(t testing.TB, cn string, uris []*url.URL) Cert {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		URIs:         uris,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("testpki: issue %s: %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testpki: marshal key of %s: %v", cn, err)
	}
	c := Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	if c.TLS, err = tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
		t.Fatalf("testpki: key pair of %s: %v", cn, err)
	}
	return c
}

// Files are the paths WriteFiles wrote.
type Files struct {
	Cert, Key, CA string
}

// WriteFiles writes c, its key and the CA as PEM files named after base in
// dir, as an operator would hand them to lanectl node run.
func (ca *CA) WriteFiles(t testing.TB, dir, base string, c Cert) Files {
	t.Helper()
	f := Files{
		Cert: filepath.Join(dir, base+".crt"),
		Key:  filepath.Join(dir, base+".key"),
		CA:   filepath.Join(dir, base+"-ca.crt"),
	}
	for path, data := range map[string][]byte{f.Cert: c.CertPEM, f.Key: c.KeyPEM, f.CA: ca.pem} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatalf("testpki: %v", err)
		}
	}
	return f
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testpki: generate key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatalf("testpki: serial: %v", err)
	}
	return n
}
