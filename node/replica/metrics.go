package replica

import (
	"fmt"
	"strconv"

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
	// LabelGroup is the label of every series that is per raft group: the
	// group's id, "0" on a single-group replica. elastickv labels its raft
	// series the same way.
	LabelGroup = "group"
)

// replicaMetrics are the raft-state series, one child per group, and the
// Go runtime and process collectors.
type replicaMetrics struct {
	reg           prometheus.Registerer
	leaderChanges *prometheus.CounterVec
	term          *prometheus.GaugeVec
	commit        *prometheus.GaugeVec
	applied       *prometheus.GaugeVec
	isLeader      *prometheus.GaugeVec
}

// groupMetrics are one group's children of replicaMetrics.
type groupMetrics struct {
	leaderChanges prometheus.Counter
	term          prometheus.Gauge
	commit        prometheus.Gauge
	applied       prometheus.Gauge
	isLeader      prometheus.Gauge
}

// newReplicaMetrics registers the raft-state metrics, the Go runtime and
// process collectors on reg.
func newReplicaMetrics(reg prometheus.Registerer) (*replicaMetrics, error) {
	group := []string{LabelGroup}
	m := &replicaMetrics{
		reg: reg,
		leaderChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricLeaderChanges,
			Help: "Leader identity changes seen by this replica, by raft group.",
		}, group),
		term: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricTerm,
			Help: "Current raft term, by raft group.",
		}, group),
		commit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricCommitIndex,
			Help: "Highest log index known to be committed, by raft group.",
		}, group),
		applied: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricAppliedIndex,
			Help: "Highest log index applied to the state machine, by raft group.",
		}, group),
		isLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricIsLeader,
			Help: "1 when this replica is the raft group's leader, else 0.",
		}, group),
	}
	cs := []prometheus.Collector{
		m.leaderChanges, m.term, m.commit, m.applied, m.isLeader,
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

// forGroup creates group id's series, at zero, and registers its
// last-contact gauge. lastContact is evaluated at scrape time, so the gauge
// grows while a follower hears nothing instead of freezing at its last
// update.
func (m *replicaMetrics) forGroup(id uint64, lastContact func() float64) (groupMetrics, error) {
	label := strconv.FormatUint(id, 10)
	gm := groupMetrics{
		leaderChanges: m.leaderChanges.WithLabelValues(label),
		term:          m.term.WithLabelValues(label),
		commit:        m.commit.WithLabelValues(label),
		applied:       m.applied.WithLabelValues(label),
		isLeader:      m.isLeader.WithLabelValues(label),
	}
	err := m.reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        MetricLastContact,
		Help:        "Follower: seconds since the raft group's leader was last heard from. Leader: 0.",
		ConstLabels: prometheus.Labels{LabelGroup: label},
	}, lastContact))
	if err != nil {
		return groupMetrics{}, fmt.Errorf("register group %d metrics: %w", id, err)
	}
	return gm, nil
}
