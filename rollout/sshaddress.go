package rollout

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// SSHAddress is a parsed [user@]host[:port]; User and Port are empty when
// not written, so the SSH config file can supply them.
type SSHAddress struct {
	User string
	Host string
	Port string
}

// ParseSSHAddress parses [user@]host[:port]. IPv6 hosts need brackets when a
// port is given.
func ParseSSHAddress(s string) (SSHAddress, error) {
	var a SSHAddress
	hostport := s
	if i := strings.LastIndex(s, "@"); i >= 0 {
		a.User, hostport = s[:i], s[i+1:]
		if !sshUserRE.MatchString(a.User) {
			return a, fmt.Errorf("%q: bad user name %q", s, a.User)
		}
	}
	a.Host = hostport
	if h, port, err := net.SplitHostPort(hostport); err == nil {
		a.Host, a.Port = h, port
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return a, fmt.Errorf("%q: bad port %q", s, port)
		}
	} else if strings.Count(hostport, ":") == 1 {
		return a, fmt.Errorf("%q: %v", s, err)
	}
	if net.ParseIP(a.Host) == nil && !sshHostRE.MatchString(a.Host) {
		return a, fmt.Errorf("%q: bad host %q", s, a.Host)
	}
	return a, nil
}
