package rollout

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// ErrSSHConfigUnsupported is returned (wrapped, with the file and line) when
// the SSH config file sets, for a host lanectl connects to, a directive that
// would change which host is reached or which host key is trusted and that
// lanectl does not apply. Connecting as if the line were not there would not
// be what its author asked for, so lanectl refuses to connect at all.
var ErrSSHConfigUnsupported = errors.New("ssh config directive not supported")

// sshConfigFile is an OpenSSH client config file, parsed by
// github.com/kevinburke/ssh_config, which keeps each directive's line.
// lanectl applies HostName, User, Port, IdentityFile and ProxyJump from it,
// and refuses the directives in refusedDirectives.
type sshConfigFile struct {
	path string
	cfg  *ssh_config.Config
}

// sshSetting is the value a directive has for a host, and where it is set.
type sshSetting struct {
	key, value string
	line       int
	// included is true when the value comes from a file that an Include
	// directive at line brings in.
	included bool
}

// get returns the value of key for alias as ssh(1) takes it: the first one
// in the file, from every Host block that matches. ok is false when the
// file does not set key for alias.
func (f *sshConfigFile) get(alias, key string) (s sshSetting, ok bool) {
	if f == nil || f.cfg == nil {
		return s, false
	}
	for _, h := range f.cfg.Hosts {
		if !h.Matches(alias) {
			continue
		}
		for _, n := range h.Nodes {
			switch n := n.(type) {
			case *ssh_config.KV:
				if strings.EqualFold(n.Key, key) {
					return sshSetting{key: n.Key, value: n.Value, line: n.Pos().Line}, true
				}
			case *ssh_config.Include:
				if v := n.Get(alias, key); v != "" {
					return sshSetting{key: key, value: v, line: n.Pos().Line, included: true}, true
				}
			}
		}
	}
	return s, false
}

func (f *sshConfigFile) all(alias, key string) []string {
	if f == nil || f.cfg == nil {
		return nil
	}
	v, _ := f.cfg.GetAll(alias, key)
	return v
}

// refuse is the error for a setting lanectl does not apply to alias.
func (f *sshConfigFile) refuse(alias string, s sshSetting, why string) error {
	where := fmt.Sprintf("%s:%d", f.path, s.line)
	if s.included {
		where += " (in a file its Include brings in)"
	}
	return fmt.Errorf("%s: %s %s (for host %s): %w: %s", where, s.key, s.value, alias, ErrSSHConfigUnsupported, why)
}

// refusedDirectives change which host is reached or which host key is
// trusted, and lanectl does not apply them. A config that sets one for a
// host lanectl connects to is refused, unless the value is one that asks
// for what lanectl does anyway (allowed).
var refusedDirectives = []struct {
	key string
	// allowed reports whether value changes nothing lanectl does;
	// knownHosts is the plan's known_hosts file.
	allowed func(value, knownHosts string) bool
	why     string
}{
	{"StrictHostKeyChecking", oneOf("yes", "ask"), "lanectl checks every host key against known_hosts and never accepts an unknown or changed one (yes and ask are what it does)"},
	{"UserKnownHostsFile", sameFile, "lanectl reads host keys only from the plan's ssh.known_hosts; name that file there instead"},
	{"GlobalKnownHostsFile", oneOf("none"), "lanectl reads host keys only from the plan's ssh.known_hosts"},
	{"KnownHostsCommand", oneOf("none"), "lanectl reads host keys only from the plan's ssh.known_hosts"},
	{"HostKeyAlias", oneOf("none"), "lanectl looks host keys up under the address it connects to"},
	{"CheckHostIP", oneOf("no"), "lanectl checks the key known for the host name or address it connects to, not a second entry for the IP address (the CheckHostIP no of OpenSSH 8.5 and later)"},
	{"VerifyHostKeyDNS", oneOf("no"), "lanectl does not trust SSHFP records in DNS; host keys come from known_hosts only"},
	{"RevokedHostKeys", oneOf("none"), "lanectl takes revoked keys only from @revoked lines in known_hosts"},
	{"ProxyCommand", oneOf("none"), "lanectl connects directly or through ProxyJump hops; write the route as ProxyJump"},
	{"CanonicalizeHostname", oneOf("no"), "lanectl connects to HostName as written"},
	{"BindAddress", oneOf(), "lanectl connects from the default source address"},
	{"BindInterface", oneOf(), "lanectl connects from the default interface"},
	{"AddressFamily", oneOf("any"), "lanectl uses whichever address family the host name resolves to"},
}

func oneOf(values ...string) func(string, string) bool {
	return func(v, _ string) bool {
		for _, ok := range values {
			if strings.EqualFold(v, ok) {
				return true
			}
		}
		return false
	}
}

// sameFile allows a UserKnownHostsFile that names only the plan's file.
func sameFile(value, knownHosts string) bool {
	fields := strings.Fields(value)
	return len(fields) == 1 && filepath.Clean(fields[0]) == filepath.Clean(knownHosts)
}

// sshHost is what the config file says about one host lanectl connects to,
// a replica or a jump host.
type sshHost struct {
	hostName, user, port string
	identityFiles        []string
	// jumps are the ProxyJump hops, in the order they are connected.
	jumps []SSHAddress
}

// host applies the config file to a. The file's values are expanded with
// expand (~/ and the home directory) before use.
func (f *sshConfigFile) host(a SSHAddress, knownHosts string, expand func(string) string) (sshHost, error) {
	alias := a.Host
	h := sshHost{hostName: alias, user: a.User, port: a.Port}
	for _, d := range refusedDirectives {
		s, ok := f.get(alias, d.key)
		if !ok {
			continue
		}
		v := s.value
		if d.key == "UserKnownHostsFile" {
			v = expand(v)
		}
		if !d.allowed(v, knownHosts) {
			return h, f.refuse(alias, s, d.why)
		}
	}
	if s, ok := f.get(alias, "HostName"); ok {
		name, err := expandHostName(s.value, alias)
		if err != nil {
			return h, f.refuse(alias, s, err.Error())
		}
		h.hostName = name
	}
	if s, ok := f.get(alias, "User"); ok && h.user == "" {
		if strings.Contains(s.value, "%") {
			return h, f.refuse(alias, s, "lanectl does not expand % tokens in User")
		}
		h.user = s.value
	}
	if s, ok := f.get(alias, "Port"); ok && h.port == "" {
		if n, err := strconv.Atoi(s.value); err != nil || n < 1 || n > 65535 {
			return h, f.refuse(alias, s, "want a port number from 1 to 65535")
		}
		h.port = s.value
	}
	for _, p := range f.all(alias, "IdentityFile") {
		h.identityFiles = append(h.identityFiles, expand(p))
	}
	if s, ok := f.get(alias, "ProxyJump"); ok && !strings.EqualFold(s.value, "none") {
		for hop := range strings.SplitSeq(s.value, ",") {
			j, err := parseJump(hop)
			if err != nil {
				return h, f.refuse(alias, s, err.Error())
			}
			h.jumps = append(h.jumps, j)
		}
	}
	return h, nil
}

// expandHostName expands the % tokens of a HostName that lanectl knows:
// %h (the alias) and %%.
func expandHostName(v, alias string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 == len(v) {
			return "", errors.New("a lone % at the end")
		}
		i++
		switch v[i] {
		case 'h':
			b.WriteString(alias)
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("lanectl expands only %%h and %%%% in HostName, not %%%c", v[i])
		}
	}
	return b.String(), nil
}

// parseJump parses one ProxyJump hop: [user@]host[:port] or
// ssh://[user@]host[:port].
func parseJump(hop string) (SSHAddress, error) {
	s := strings.TrimSpace(hop)
	s = strings.TrimPrefix(s, "ssh://")
	if s == "" || strings.ContainsAny(s, " \t/") {
		return SSHAddress{}, fmt.Errorf("ProxyJump hop %q: lanectl supports [user@]host[:port] and ssh://[user@]host[:port], comma-separated", strings.TrimSpace(hop))
	}
	a, err := ParseSSHAddress(s)
	if err != nil {
		return a, fmt.Errorf("ProxyJump hop %w", err)
	}
	return a, nil
}
