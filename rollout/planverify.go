package rollout

import (
	"fmt"
	"strings"

	"github.com/prometheus/common/config"
	"go.yaml.in/yaml/v3"
)

// verifyChecks validates verify.metrics and verify.http, which replace the
// target's defaults when given.
func (v *validator) verifyChecks(p *Plan, raw *rawVerify) {
	sample := fmt.Sprintf("%s=%q", p.Target.ReplicaLabel, "replica")
	if len(p.Replicas) > 0 && p.Replicas[0].Selector != "" {
		sample = p.Replicas[0].Selector
	}
	if raw.Metrics != nil {
		p.Verify.Metrics = nil
		for i, m := range raw.Metrics {
			if strings.TrimSpace(m) == "" {
				v.errorf([]any{"verify", "metrics", i}, "verify.metrics[%d]: empty condition", i)
				continue
			}
			if err := checkCondition(m, sample, ""); err != nil {
				v.errorf([]any{"verify", "metrics", i}, "verify.metrics[%d]: %v", i, err)
				continue
			}
			p.Verify.Metrics = append(p.Verify.Metrics, m)
		}
	}
	if raw.HTTP != nil {
		p.Verify.HTTP = nil
		for i, h := range raw.HTTP {
			if !strings.HasPrefix(h, "/") || strings.ContainsAny(h, " \t\r\n\x00") {
				v.errorf([]any{"verify", "http", i}, "verify.http[%d] %q: want a path of the replica's http URL, e.g. /healthz", i, h)
				continue
			}
			p.Verify.HTTP = append(p.Verify.HTTP, h)
		}
	}
}

// flagProof refuses a plan whose flag nothing can prove: the target's
// metrics do not show it and the plan has no read command.
func (v *validator) flagProof(p *Plan, raw *rawPlan) {
	if p.Verify.FlagProof.FromMetrics() || p.Commands.Read != "" {
		return
	}
	at := []any{"target"}
	if raw.Flag != nil {
		at = []any{"flag", "name"}
	}
	v.errorf(at, "flag %s: the %s target's metrics cannot show its running value: set commands.read to a command that prints the value the running process has, and nothing when it is unset (the README's \"Rolling out on elastickv\" has docker and systemd examples)", p.Flag.Name, p.Target.Name)
}

// httpConfigError finds which HTTP client config block failed its own
// validation (it reports no line) and points at it.
func httpConfigError(loc locator, err error) error {
	for _, at := range httpConfigPaths(loc.root) {
		n := nodeAt(loc.root, at)
		if n == nil {
			continue
		}
		var c config.HTTPClientConfig
		if derr := n.Decode(&c); derr != nil {
			return loc.errorf(at, "%s: %v", pathString(at), derr)
		}
	}
	return loc.errorf(nil, "%v", err)
}

// httpConfigPaths lists where a plan may hold an HTTP client config.
func httpConfigPaths(root *yaml.Node) [][]any {
	paths := [][]any{{"prometheus", "http_config"}, {"replica_http"}}
	if rs := nodeAt(root, []any{"replicas"}); rs != nil && rs.Kind == yaml.SequenceNode {
		for i := range rs.Content {
			paths = append(paths, []any{"replicas", i, "http_config"})
		}
	}
	return paths
}

// nodeAt is the node at a key path, nil when it is not in the document.
func nodeAt(n *yaml.Node, path []any) *yaml.Node {
	for _, step := range path {
		if n, _ = child(n, step); n == nil {
			return nil
		}
	}
	return n
}

func pathString(path []any) string {
	var b strings.Builder
	for _, s := range path {
		switch s := s.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		case int:
			fmt.Fprintf(&b, "[%d]", s)
		}
	}
	return b.String()
}

// httpConfigBlock names the HTTP client config block holding line, "" when
// none does or root is nil.
func httpConfigBlock(root *yaml.Node, line int) string {
	if root == nil {
		return ""
	}
	best, bestLine := "", 0
	for _, at := range httpConfigPaths(root) {
		if n := nodeAt(root, at); n != nil && n.Line <= line && n.Line > bestLine {
			best, bestLine = pathString(at), n.Line
		}
	}
	return best
}
