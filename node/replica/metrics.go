package replica

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Replica metric names, shared with elastickv.
const (
	MetricLeaderChanges = "elastickv_raft_leader_changes_seen_total"
	MetricTerm          = "elastickv_raft_term"
	MetricCommitIndex   = "elastickv_raft_commit_index"
	MetricAppliedIndex  = "elastickv_raft_applied_index"
	MetricLastContact   = "elastickv_raft_last_contact_seconds"
	MetricIsLeader      = "elastickv_raft_is_leader"
	// LabelNodeID is the constant label every series of a replica carries.
	LabelNodeID = "node_id"
)

type replicaMetrics struct {
	leaderChanges prometheus.Counter
	term          prometheus.Gauge
	commit        prometheus.Gauge
	applied       prometheus.Gauge
	isLeader      prometheus.Gauge
}

// newReplicaMetrics registers the raft-state metrics, the Go runtime and
// process collectors on reg. lastContact is evaluated at scrape time, so the
// gauge grows while a follower hears nothing instead of freezing at its last
// update.
func newReplicaMetrics(reg prometheus.Registerer, lastContact func() float64) (*replicaMetrics, error) {
	m := &replicaMetrics{
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricLeaderChanges,
			Help: "Leader identity changes seen by this replica.",
		}),
		term: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricTerm,
			Help: "Current raft term.",
		}),
		commit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricCommitIndex,
			Help: "Highest log index known to be committed.",
		}),
		applied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricAppliedIndex,
			Help: "Highest log index applied to the state machine.",
		}),
		isLeader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricIsLeader,
			Help: "1 when this replica is the raft leader, else 0.",
		}),
	}
	cs := []prometheus.Collector{
		m.leaderChanges, m.term, m.commit, m.applied, m.isLeader,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: MetricLastContact,
			Help: "Follower: seconds since the leader was last heard from. Leader: 0.",
		}, lastContact),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register replica metrics: %w", err)
		}
	}
	return m, nil
}
