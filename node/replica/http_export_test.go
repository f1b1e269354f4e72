package node

import "time"

// StatusForTest returns s as if the leader's commit index was learned at at.
func StatusForTest(s Status, at time.Time) Status {
	s.leaderCommitAt = at
	return s
}
