package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// ReplicaReport is the part of a lanectl replica's /status the rollout
// reads.
type ReplicaReport struct {
	ID           string `json:"id"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	Leader       string `json:"leader"`
	LeaderRaftID uint64 `json:"leader_raft_id"`
	Applied      uint64 `json:"applied"`
	LeaderCommit uint64 `json:"leader_commit"`
	LanesEnabled bool   `json:"lanes_enabled"`
}

// statusCheck reads the target's status path: it must answer JSON that
// names a leader.
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
	if rep.LeaderRaftID == 0 && rep.Leader == "" {
		c.Detail = fmt.Sprintf("no leader (role %s, term %d)", rep.Role, rep.Term)
		return c, &rep
	}
	c.OK = true
	c.Detail = "leader " + rep.Leader
	return c, &rep
}
