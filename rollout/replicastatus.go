package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/lanectl/lanectl/node/replica/status"
)

// ReplicaReport is a lanectl replica's /status document, as node/replica
// serves it.
type ReplicaReport = status.Replica

// statusCheck reads the target's status path: it must answer JSON in which
// every raft group of the replica names a leader.
func (p *Prober) statusCheck(ctx context.Context, r Replica, path string) (CheckResult, *ReplicaReport) {
	c := CheckResult{What: "GET " + path}
	code, body, err := p.get(ctx, r, path)
	switch {
	case err != nil:
		c.Detail = err.Error()
		return c, nil
	case code != http.StatusOK:
		c.Detail = fmt.Sprintf("%d %s", code, strings.TrimSpace(string(body)))
		return c, nil
	}
	var rep ReplicaReport
	if err := json.Unmarshal(body, &rep); err != nil {
		c.Detail = fmt.Sprintf("not a status document: %v", err)
		return c, nil
	}
	groups := rep.Groups
	if len(groups) == 0 {
		groups = []status.Group{rep.Group}
	}
	var leaders []string
	for _, g := range groups {
		if g.LeaderRaftID == 0 && g.Leader == "" {
			c.Detail = fmt.Sprintf("group %d has no leader (role %s, term %d)", g.ID, g.Role, g.Term)
			if len(groups) == 1 {
				c.Detail = fmt.Sprintf("no leader (role %s, term %d)", g.Role, g.Term)
			}
			return c, &rep
		}
		leaders = append(leaders, g.Leader)
	}
	c.OK = true
	c.Detail = "leader " + strings.Join(slices.Compact(slices.Sorted(slices.Values(leaders))), ", ")
	return c, &rep
}
