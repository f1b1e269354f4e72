package gates_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
)

// replicaHistory describes one replica's synthetic history, one sample a
// minute, in the shape node/ exports it.
type replicaHistory struct {
	name string
	// flagOn is the minute the flag came on (restarting the replica), or -1
	// for a replica that never had it.
	flagOn int
	// heartbeatDrops are minutes at which a heartbeat-lane message was
	// dropped.
	heartbeatDrops []int
	// dropEvery: one replication-lane drop per dropEvery sent messages.
	dropEvery int
}

func (r replicaHistory) restarted(m int) bool { return r.flagOn >= 0 && m >= r.flagOn }

// lane is the bulk lane: replication with the flag, normal without.
func (r replicaHistory) lane(m int) string {
	if r.restarted(m) {
		return "replication"
	}
	return "normal"
}

// writeHistory writes minutes+1 samples per series, starting at start, to an
// OpenMetrics file in dir and returns its path.
func writeHistory(t testing.TB, dir string, start time.Time, minutes int, rs []replicaHistory) string {
	t.Helper()
	path := filepath.Join(dir, "history.om")
	om, err := promtest.CreateOpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := func(m int) time.Time { return start.Add(time.Duration(m) * time.Minute) }
	lbl := func(r replicaHistory, extra string) string {
		s := fmt.Sprintf(`job="lanectl",instance="%s:9101",node_id="%s"`, r.name, r.name)
		if extra != "" {
			s += "," + extra
		}
		return "{" + s + "}"
	}

	om.Family("elastickv_raft_dispatcher_lanes_enabled", "gauge")
	for _, r := range rs {
		for m := 0; m <= minutes; m++ {
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
			for m := 0; m <= minutes; m++ {
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
		for m := 0; m <= minutes; m++ {
			om.Sample("elastickv_raft_last_contact_seconds"+lbl(r, ""), ts(m), 0.05+float64(m%7)/100)
		}
	}
	// Counters restart from zero when the replica restarts for the flag.
	counter := func(r replicaHistory, m int, perMinute float64) float64 {
		if r.restarted(m) {
			return float64(m-r.flagOn) * perMinute
		}
		return float64(m) * perMinute
	}
	om.Family("elastickv_raft_leader_changes_seen", "counter")
	for _, r := range rs {
		for m := 0; m <= minutes; m++ {
			v := 2.0 // leader changes seen before history starts
			if r.restarted(m) {
				v = 1 // the one it saw when it rejoined
			}
			om.Sample("elastickv_raft_leader_changes_seen_total"+lbl(r, ""), ts(m), v)
		}
	}
	om.Family("elastickv_raft_dispatch_sent", "counter")
	for _, r := range rs {
		for m := 0; m <= minutes; m++ {
			om.Sample("elastickv_raft_dispatch_sent_total"+lbl(r, `lane="heartbeat",peer="1"`), ts(m), counter(r, m, 10))
		}
		// The bulk lane's name changes with the layout, so its series do too.
		for _, lane := range []string{"normal", "replication"} {
			for m := 0; m <= minutes; m++ {
				if r.lane(m) == lane {
					om.Sample("elastickv_raft_dispatch_sent_total"+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), counter(r, m, 100))
				}
			}
		}
	}
	om.Family("elastickv_raft_dispatch_dropped", "counter")
	for _, r := range rs {
		for _, lane := range []string{"normal", "replication"} {
			for m := 0; m <= minutes; m++ {
				if r.lane(m) == lane && r.dropEvery > 0 {
					om.Sample("elastickv_raft_dispatch_dropped_total"+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), float64(int(counter(r, m, 100))/r.dropEvery))
				}
			}
		}
		// The heartbeat-lane series exists only from the first drop, as a
		// client_golang CounterVec child does.
		drops := 0
		for m := 0; m <= minutes; m++ {
			for _, d := range r.heartbeatDrops {
				if d == m {
					drops++
				}
			}
			if drops > 0 {
				om.Sample("elastickv_raft_dispatch_dropped_total"+lbl(r, `lane="heartbeat",peer="1"`), ts(m), float64(drops))
			}
		}
	}
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
