package rollout

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key errors. There is deliberately no way to accept an unknown key:
// the operator adds it to known_hosts after checking the fingerprint.
var (
	// ErrHostKeyUnknown is returned (in a *HostKeyError) when known_hosts
	// has no key for the host.
	ErrHostKeyUnknown = errors.New("host key is not in known_hosts")
	// ErrHostKeyChanged is returned (in a *HostKeyError) when known_hosts
	// has keys for the host and the server offered a different one, or a
	// revoked one.
	ErrHostKeyChanged = errors.New("host key does not match known_hosts")
)

// HostKeyError is a refused host key, with what a person needs to decide
// whether the change is legitimate.
type HostKeyError struct {
	Host        string // as looked up in known_hosts: host or [host]:port
	KeyType     string
	Fingerprint string // SHA256:...
	// Known are the known_hosts entries for the host, as file:line.
	Known []string
	Err   error // ErrHostKeyUnknown or ErrHostKeyChanged
}

// Error names the host, the key it offered and, for a changed key, the
// known_hosts entries it does not match.
func (e *HostKeyError) Error() string {
	if errors.Is(e.Err, ErrHostKeyUnknown) {
		return fmt.Sprintf("%s offered %s key %s, which is not in known_hosts: refusing to connect (check the fingerprint out of band, then add it with ssh-keyscan)", e.Host, e.KeyType, e.Fingerprint)
	}
	return fmt.Sprintf("%s offered %s key %s, which does not match known_hosts (%s): refusing to connect; this may be a man-in-the-middle attack", e.Host, e.KeyType, e.Fingerprint, strings.Join(e.Known, ", "))
}

// Unwrap returns ErrHostKeyUnknown or ErrHostKeyChanged.
func (e *HostKeyError) Unwrap() error { return e.Err }

// refusedHostKey turns the known_hosts callback's refusal of key, offered
// by hostname, into a *HostKeyError; ok is false for an error that is not
// about the key (it is returned as it is).
func refusedHostKey(hostname string, key ssh.PublicKey, err error) (he *HostKeyError, ok bool) {
	he = &HostKeyError{Host: knownhosts.Normalize(hostname), KeyType: key.Type(), Fingerprint: ssh.FingerprintSHA256(key), Err: ErrHostKeyChanged}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		he.Err = ErrHostKeyUnknown
	case errors.As(err, &ke):
		for _, k := range ke.Want {
			he.Known = append(he.Known, fmt.Sprintf("%s:%d", k.Filename, k.Line))
		}
	case errors.As(err, &re):
		he.Known = []string{fmt.Sprintf("%s:%d (revoked)", re.Revoked.Filename, re.Revoked.Line)}
	default:
		return nil, false
	}
	return he, true
}

// knownAlgorithms lists the key types known_hosts holds for addr, so the
// server is asked for a key we can check rather than one we have never seen
// (which would look like a changed key).
func (s *SSHRunner) knownAlgorithms(addr string) []string {
	probe := ssh.PublicKey(nil)
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	if probe, err = ssh.NewPublicKey(pub); err != nil {
		return nil
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		tcp = &net.TCPAddr{IP: net.IPv4zero}
	}
	var ke *knownhosts.KeyError
	if !errors.As(s.hostKeys(addr, tcp, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, k := range ke.Want {
		switch k.Key.Type() {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			add(ssh.KeyAlgoRSA)
		default:
			add(k.Key.Type())
		}
	}
	return algos
}
