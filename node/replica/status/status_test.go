package status_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanectl/lanectl/node/replica/status"
)

func TestHealthReasons(t *testing.T) {
	now := time.Now()
	leader := status.Group{Role: "leader", Leader: "n1", LeaderRaftID: 1, Commit: 100, Applied: 100, LeaderCommit: 100, LeaderCommitAt: now}
	tests := []struct {
		name   string
		st     status.Group
		ok     bool
		reason string
	}{
		{"no leader", status.Group{Role: "candidate", Term: 4}, false, "no leader known"},
		{"commit unknown", status.Group{Role: "follower", Leader: "n1", LeaderRaftID: 1}, false, "commit index is not known"},
		{"lagging", status.Group{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 10, LeaderCommit: 100, LeaderCommitAt: now}, false, "90 behind"},
		{"stale", status.Group{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 100, LeaderCommit: 100, LeaderCommitAt: now.Add(-time.Minute)}, false, "has not confirmed"},
		{"caught up", status.Group{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 98, LeaderCommit: 100, LeaderCommitAt: now}, true, "ok"},
		{"leader", leader, true, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := tt.st.Health(5, now)
			if ok != tt.ok || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %v %q, want %v and a reason containing %q", ok, reason, tt.ok, tt.reason)
			}
			// A one-group replica is exactly as healthy as its group.
			rok, rreason := status.Replica{Group: tt.st, Groups: []status.Group{tt.st}}.Health(5, now)
			if rok != ok || rreason != reason {
				t.Errorf("one-group replica: got %v %q, want %v %q", rok, rreason, ok, reason)
			}
		})
	}
}

// TestReplicaHealthCoversEveryGroup: one group without a leader makes the
// replica unhealthy, and the reason names it.
func TestReplicaHealthCoversEveryGroup(t *testing.T) {
	now := time.Now()
	serving := func(id uint64, role string) status.Group {
		return status.Group{ID: id, Role: role, Leader: "n1", LeaderRaftID: 1, Applied: 7, LeaderCommit: 7, LeaderCommitAt: now}
	}
	all := []status.Group{serving(0, "leader"), serving(1, "follower"), serving(2, "leader")}
	ok, reason := status.Replica{Group: all[0], Groups: all}.Health(5, now)
	if !ok || reason != "ok: 3 groups serving, leader of 2" {
		t.Errorf("all serving: got %v %q", ok, reason)
	}
	one := append([]status.Group(nil), all...)
	one[2] = status.Group{ID: 2, Role: "candidate", Term: 3}
	ok, reason = status.Replica{Group: one[0], Groups: one}.Health(5, now)
	if ok || !strings.Contains(reason, "1 of 3 groups not serving: group 2: no leader known") {
		t.Errorf("group 2 leaderless: got %v %q", ok, reason)
	}
}

// TestDocumentShape: group 0's fields stay at the top level, as a reader
// of a single-group replica expects, and an unknown leader-commit time is
// absent rather than a real-looking instant in year 1.
func TestDocumentShape(t *testing.T) {
	g0 := status.Group{ID: 0, Role: "leader", Applied: 5}
	b, err := json.Marshal(status.Replica{ID: "n1", Group: g0, Groups: []status.Group{g0, {ID: 1, Role: "follower"}}})
	if err != nil {
		t.Fatal(err)
	}
	var top struct {
		ID      string `json:"id"`
		Role    string `json:"role"`
		Applied uint64 `json:"applied"`
		Groups  []struct {
			Group uint64 `json:"group"`
			Role  string `json:"role"`
		} `json:"groups"`
	}
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if top.ID != "n1" || top.Role != "leader" || top.Applied != 5 || len(top.Groups) != 2 || top.Groups[1].Group != 1 || top.Groups[1].Role != "follower" {
		t.Errorf("got %s", b)
	}
	if strings.Contains(string(b), "leader_commit_at") {
		t.Errorf("got %s, want no leader_commit_at while it is unknown", b)
	}
}
