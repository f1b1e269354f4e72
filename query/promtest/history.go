package promtest

import (
	"fmt"
	"time"
)

// ReplicaHistory describes one replica's synthetic history in the shape
// node/ exports it (DESIGN.md metric names), one sample per step. Times are
// counted in steps from the start of the history.
type ReplicaHistory struct {
	Name string
	// FlagOn is the step at which the flag came on (the replica restarted,
	// so its counters began again at zero), or -1 if it never did.
	FlagOn int
	// HeartbeatDrops are steps at which a heartbeat-lane message was
	// dropped. The heartbeat drop series exists only from the first one,
	// as a client_golang CounterVec child does.
	HeartbeatDrops []int
	// DropEvery is one bulk-lane drop per DropEvery sent messages; 0 for
	// none (and then no drop series at all).
	DropEvery int
}

func (r ReplicaHistory) restarted(m int) bool { return r.FlagOn >= 0 && m >= r.FlagOn }

// lane is the bulk lane: replication with the flag, normal without.
func (r ReplicaHistory) lane(m int) string {
	if r.restarted(m) {
		return "replication"
	}
	return "normal"
}

// WriteHistory writes steps+1 samples per series, step apart from start,
// to a new OpenMetrics file at path, ready for Backfill.
func WriteHistory(path string, start time.Time, step time.Duration, steps int, rs []ReplicaHistory) error {
	om, err := CreateOpenMetrics(path)
	if err != nil {
		return err
	}
	ts := func(m int) time.Time { return start.Add(time.Duration(m) * step) }
	lbl := func(r ReplicaHistory, extra string) string {
		s := fmt.Sprintf(`job="lanectl",instance="%s:9101",node_id="%s"`, r.Name, r.Name)
		if extra != "" {
			s += "," + extra
		}
		return "{" + s + "}"
	}

	om.Family("elastickv_raft_dispatcher_lanes_enabled", "gauge")
	for _, r := range rs {
		for m := 0; m <= steps; m++ {
			v := 0.0
			if r.restarted(m) {
				v = 1
			}
			om.Sample("elastickv_raft_dispatcher_lanes_enabled"+lbl(r, ""), ts(m), v)
		}
	}
	om.Family("elastickv_fsm_apply_sync_mode", "gauge")
	for _, r := range rs {
		for _, mode := range []string{"nosync", "sync"} {
			for m := 0; m <= steps; m++ {
				v := 0.0
				if mode == "sync" {
					v = 1
				}
				om.Sample("elastickv_fsm_apply_sync_mode"+lbl(r, `mode="`+mode+`"`), ts(m), v)
			}
		}
	}
	om.Family("elastickv_raft_last_contact_seconds", "gauge")
	for _, r := range rs {
		for m := 0; m <= steps; m++ {
			om.Sample("elastickv_raft_last_contact_seconds"+lbl(r, ""), ts(m), 0.05+float64(m%7)/100)
		}
	}
	// Counters restart from zero when the replica restarts for the flag.
	counter := func(r ReplicaHistory, m int, perMinute float64) float64 {
		if r.restarted(m) {
			return float64(m-r.FlagOn) * perMinute
		}
		return float64(m) * perMinute
	}
	om.Family("elastickv_raft_leader_changes_seen", "counter")
	for _, r := range rs {
		for m := 0; m <= steps; m++ {
			v := 2.0 // leader changes seen before history starts
			if r.restarted(m) {
				v = 1 // the one it saw when it rejoined
			}
			om.Sample("elastickv_raft_leader_changes_seen_total"+lbl(r, ""), ts(m), v)
		}
	}
	om.Family("elastickv_raft_dispatch_sent", "counter")
	for _, r := range rs {
		for m := 0; m <= steps; m++ {
			om.Sample("elastickv_raft_dispatch_sent_total"+lbl(r, `lane="heartbeat",peer="1"`), ts(m), counter(r, m, 10))
		}
		// The bulk lane's name changes with the layout, so its series do too.
		for _, lane := range []string{"normal", "replication"} {
			for m := 0; m <= steps; m++ {
				if r.lane(m) == lane {
					om.Sample("elastickv_raft_dispatch_sent_total"+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), counter(r, m, 100))
				}
			}
		}
	}
	om.Family("elastickv_raft_dispatch_dropped", "counter")
	for _, r := range rs {
		for _, lane := range []string{"normal", "replication"} {
			for m := 0; m <= steps; m++ {
				if r.lane(m) == lane && r.DropEvery > 0 {
					om.Sample("elastickv_raft_dispatch_dropped_total"+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), float64(int(counter(r, m, 100))/r.DropEvery))
				}
			}
		}
		// The heartbeat-lane series exists only from the first drop, as a
		// client_golang CounterVec child does.
		drops := 0
		for m := 0; m <= steps; m++ {
			for _, d := range r.HeartbeatDrops {
				if d == m {
					drops++
				}
			}
			if drops > 0 {
				om.Sample("elastickv_raft_dispatch_dropped_total"+lbl(r, `lane="heartbeat",peer="1"`), ts(m), float64(drops))
			}
		}
	}
	return om.Close()
}
