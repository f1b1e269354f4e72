package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// IdentityScheme is the URI scheme of the subject alternative name that says
// which node a certificate belongs to: the certificate of node n2 carries the
// URI SAN "lanectl-node:n2". A node's certificate carries exactly one.
const IdentityScheme = "lanectl-node"

var (
	// ErrUnauthorized is returned (wrapped, with the details) when an
	// inbound connection's sender is not a configured peer, or its
	// certificate does not name the node its preamble claims.
	ErrUnauthorized = errors.New("sender not authorized")
	// ErrInsecureListen is returned by New when it would accept plaintext
	// raft connections beyond loopback and Config.Insecure does not allow
	// it.
	ErrInsecureListen = errors.New("refusing to listen beyond loopback without TLS")
)

// CertIdentity returns the node name a certificate carries in its
// IdentityScheme URI SAN.
func CertIdentity(cert *x509.Certificate) (string, error) {
	var names []string
	for _, u := range cert.URIs {
		if u.Scheme == IdentityScheme {
			names = append(names, u.Opaque)
		}
	}
	switch {
	case len(names) == 0:
		return "", fmt.Errorf("certificate %q has no %s: URI SAN naming its node", cert.Subject.CommonName, IdentityScheme)
	case len(names) > 1:
		return "", fmt.Errorf("certificate %q names %d nodes %q, want one", cert.Subject.CommonName, len(names), names)
	case names[0] == "":
		return "", fmt.Errorf("certificate %q has an empty %s: URI SAN", cert.Subject.CommonName, IdentityScheme)
	}
	return names[0], nil
}

// LoadTLS reads a PEM certificate and key and a PEM CA bundle and returns a
// config holding them: Certificates is the pair, RootCAs and ClientCAs the
// bundle, and TLS 1.3 the minimum. It is the starting point for both
// Config.TLS (the CA signs every member) and an HTTP server's config (the CA
// signs its clients).
func LoadTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s and key %s: %w", certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("load CA %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// IsLoopback reports whether addr is a loopback address, the only place a
// node may serve without TLS unless told it is insecure.
func IsLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// ListenAddr names a listener in an error: the address as configured, and
// the one bound when they differ (a wildcard, port 0).
func ListenAddr(configured string, ln net.Listener) string {
	bound := ln.Addr().String()
	if configured == "" || configured == bound {
		return bound
	}
	return fmt.Sprintf("%s (bound %s)", configured, bound)
}

// nodeName is the identity the certificate of node id must carry.
func (t *TCP) nodeName(id uint64) string {
	if n, ok := t.cfg.Names[id]; ok {
		return n
	}
	return strconv.FormatUint(id, 10)
}

// checkIdentity checks that the certificate at the head of a verified chain
// names node id.
func (t *TCP) checkIdentity(certs []*x509.Certificate, id uint64) error {
	if len(certs) == 0 {
		return fmt.Errorf("%w: no certificate", ErrUnauthorized)
	}
	name, err := CertIdentity(certs[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if want := t.nodeName(id); name != want {
		return fmt.Errorf("%w: certificate names node %q, but the connection claims node %d (%q)", ErrUnauthorized, name, id, want)
	}
	return nil
}

// newServerTLS is the config inbound connections are served with: the peer
// must present a certificate the members' CA signed. Which node it names is
// checked once the preamble says who it claims to be.
func (t *TCP) newServerTLS() *tls.Config {
	c := t.cfg.TLS.Clone()
	c.MinVersion = tls.VersionTLS13
	c.ClientAuth = tls.RequireAndVerifyClientCert
	if c.ClientCAs == nil {
		c.ClientCAs = c.RootCAs
	}
	return c
}

// clientTLS is the config for dialling node peer: the server's chain is
// verified against the members' CA and its certificate must name peer.
// Host names play no part, so peers may be addressed by IP.
func (t *TCP) clientTLS(peer uint64) *tls.Config {
	c := t.cfg.TLS.Clone()
	c.MinVersion = tls.VersionTLS13
	roots := c.RootCAs
	// The standard verification checks a host name; the identity checked
	// here is the node name instead, so it is done in VerifyConnection.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("node %d presented no certificate", peer)
		}
		opts := x509.VerifyOptions{
			Roots:         roots,
			Intermediates: x509.NewCertPool(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("verify certificate of node %d: %w", peer, err)
		}
		return t.checkIdentity(cs.PeerCertificates, peer)
	}
	return c
}
