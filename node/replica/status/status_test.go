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
	leader := status.Replica{Role: "leader", Leader: "n1", LeaderRaftID: 1, Commit: 100, Applied: 100, LeaderCommit: 100, LeaderCommitAt: now}
	tests := []struct {
		name   string
		st     status.Replica
		ok     bool
		reason string
	}{
		{"no leader", status.Replica{Role: "candidate", Term: 4}, false, "no leader known"},
		{"commit unknown", status.Replica{Role: "follower", Leader: "n1", LeaderRaftID: 1}, false, "commit index is not known"},
		{"lagging", status.Replica{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 10, LeaderCommit: 100, LeaderCommitAt: now}, false, "90 behind"},
		{"stale", status.Replica{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 100, LeaderCommit: 100, LeaderCommitAt: now.Add(-time.Minute)}, false, "has not confirmed"},
		{"caught up", status.Replica{Role: "follower", Leader: "n1", LeaderRaftID: 1, Applied: 98, LeaderCommit: 100, LeaderCommitAt: now}, true, "ok"},
		{"leader", leader, true, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := tt.st.Health(5, now)
			if ok != tt.ok || !strings.Contains(reason, tt.reason) {
				t.Errorf("got %v %q, want %v and a reason containing %q", ok, reason, tt.ok, tt.reason)
			}
		})
	}
}

// TestUnknownLeaderCommitTimeIsAbsent: a zero time would read as a real
// instant in year 1 to a reader in another language.
func TestUnknownLeaderCommitTimeIsAbsent(t *testing.T) {
	b, err := json.Marshal(status.Replica{ID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "leader_commit_at") {
		t.Errorf("got %s, want no leader_commit_at while it is unknown", b)
	}
}
