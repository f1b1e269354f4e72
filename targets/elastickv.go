package targets

import (
	"fmt"

	"github.com/lanectl/lanectl/gates"
)

// ElastickvMaxLag is how many raft entries a replica's applied index may
// trail the highest commit index any replica reports for the same group
// and still count as caught up. Under write load a healthy follower's
// scrape trails the leader's by a few hundred entries (the captures in
// elastickvtest show 250); one replaying a log or installing a snapshot
// trails by many thousands.
const ElastickvMaxLag = 1000

// Elastickv is the target of stock upstream elastickv: dispatch counters
// per raft group with no lane label, no sent counter, no lanes gauge and
// no process collector; the flag is proven by the plan's read command.
func Elastickv() Target {
	return Target{
		Name:           "elastickv",
		Summary:        "stock elastickv: counters per raft group, no lane label, no lanes gauge; the flag is proven by commands.read",
		ReplicaLabel:   gates.DefaultReplicaLabel,
		PresenceMetric: ElastickvLocalState,
		Gates:          elastickvGates,
		Blind:          elastickvBlind,
		// Nothing elastickv exports shows the dispatcher layout: the lanes
		// flag is known only by how it is parsed.
		FlagProofs: []FlagProof{lanesFlagProof("", ""), syncModeProof()},
		Verify: Verify{
			// The metrics listener answers every path with the exposition,
			// so there is no health endpoint to ask: everything is read
			// from the metrics of every replica at once.
			Metrics: elastickvVerify(),
		},
		Drops: Breakdown{Metric: ElastickvDropped, Label: "group"},
	}
}

// elastickvVerify are the conditions of a healthy, caught-up elastickv
// replica. Each is non-empty only when it holds for every raft group of
// the replica, so a replica exporting no group fails them all.
func elastickvVerify() []string {
	groups := fmt.Sprintf(`count(group by (group) (%s{{sel}}))`, ElastickvLocalState)
	return []string{
		// Every group knows a leader.
		fmt.Sprintf(`count(group by (group) (%s{{sel "leader_id!=\"\""}} == 1)) == %s`, ElastickvLeaderIdentity, groups),
		// Every group is leader or follower (not candidate, shutdown, unknown).
		fmt.Sprintf(`count(%s{{sel "state=~\"leader|follower\""}} == 1) == %s`, ElastickvLocalState, groups),
		// Every group has applied to within ElastickvMaxLag of the highest
		// commit index any replica reports for it.
		fmt.Sprintf(`count(%s{{sel}} >= on (group) (max by (group) (%s) - %d)) == %s`, ElastickvAppliedIndex, ElastickvCommitIndex, ElastickvMaxLag, groups),
	}
}
