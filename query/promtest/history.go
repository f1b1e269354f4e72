package promtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/lanectl/lanectl/targets"
)

// ReplicaHistory describes one replica's synthetic history in the shape
// node/ exports it (the lanectl metric names of package targets), one
// sample per step. Times are counted in steps from the start of the history.
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
	// Crashes are steps at which the replica crashed: it misses that
	// scrape and the next, then runs again (with the flag it had) with
	// counters from zero and a new process start time.
	Crashes []int
}

func (r ReplicaHistory) restarted(m int) bool { return r.FlagOn >= 0 && m >= r.FlagOn }

// crashDown is how many scrapes a crashed replica misses.
const crashDown = 2

// down is true while the replica is not running after a crash.
func (r ReplicaHistory) down(m int) bool {
	for _, c := range r.Crashes {
		if m >= c && m < c+crashDown {
			return true
		}
	}
	return false
}

// started is the step the running process started at: the last restart
// (for the flag, or after a crash) at or before m, or 0.
func (r ReplicaHistory) started(m int) int {
	s := 0
	if r.restarted(m) {
		s = r.FlagOn
	}
	for _, c := range r.Crashes {
		if back := c + crashDown; m >= back && back > s {
			s = back
		}
	}
	return s
}

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

	// up are the steps at which r was scraped.
	up := func(r ReplicaHistory) func(func(int) bool) {
		return func(yield func(int) bool) {
			for m := 0; m <= steps; m++ {
				if !r.down(m) && !yield(m) {
					return
				}
			}
		}
	}
	om.Family(targets.LanectlProcessStartTime, "gauge")
	for _, r := range rs {
		for m := range up(r) {
			// A process starts a few seconds before its first scrape; one
			// running when the history starts started an hour before.
			at := ts(r.started(m)).Add(-3 * time.Second)
			if r.started(m) == 0 {
				at = start.Add(-time.Hour)
			}
			om.Sample(targets.LanectlProcessStartTime+lbl(r, ""), ts(m), float64(at.UnixMilli())/1000)
		}
	}
	om.Family(targets.LanectlLanesEnabled, "gauge")
	for _, r := range rs {
		for m := range up(r) {
			v := 0.0
			if r.restarted(m) {
				v = 1
			}
			om.Sample(targets.LanectlLanesEnabled+lbl(r, ""), ts(m), v)
		}
	}
	om.Family(targets.LanectlSyncMode, "gauge")
	for _, r := range rs {
		for _, mode := range []string{"nosync", "sync"} {
			for m := range up(r) {
				v := 0.0
				if mode == "sync" {
					v = 1
				}
				om.Sample(targets.LanectlSyncMode+lbl(r, `mode="`+mode+`"`), ts(m), v)
			}
		}
	}
	om.Family(targets.LanectlLastContact, "gauge")
	for _, r := range rs {
		for m := range up(r) {
			om.Sample(targets.LanectlLastContact+lbl(r, ""), ts(m), 0.05+float64(m%7)/100)
		}
	}
	// Counters restart from zero when the replica restarts, for the flag
	// or after a crash.
	counter := func(r ReplicaHistory, m int, perMinute float64) float64 {
		return float64(m-r.started(m)) * perMinute
	}
	om.Family(family(targets.LanectlLeaderChanges), "counter")
	for _, r := range rs {
		for m := range up(r) {
			v := 2.0 // leader changes seen before history starts
			if r.started(m) > 0 {
				v = 1 // the one it saw when it rejoined
			}
			om.Sample(targets.LanectlLeaderChanges+lbl(r, ""), ts(m), v)
		}
	}
	om.Family(family(targets.LanectlSent), "counter")
	for _, r := range rs {
		for m := range up(r) {
			om.Sample(targets.LanectlSent+lbl(r, `lane="heartbeat",peer="1"`), ts(m), counter(r, m, 10))
		}
		// The bulk lane's name changes with the layout, so its series do too.
		for _, lane := range []string{"normal", "replication"} {
			for m := range up(r) {
				if r.lane(m) == lane {
					om.Sample(targets.LanectlSent+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), counter(r, m, 100))
				}
			}
		}
	}
	om.Family(family(targets.LanectlDropped), "counter")
	for _, r := range rs {
		for _, lane := range []string{"normal", "replication"} {
			for m := range up(r) {
				if r.lane(m) == lane && r.DropEvery > 0 {
					om.Sample(targets.LanectlDropped+lbl(r, `lane="`+lane+`",peer="1"`), ts(m), float64(int(counter(r, m, 100))/r.DropEvery))
				}
			}
		}
		// The heartbeat-lane series exists only from the first drop, as a
		// client_golang CounterVec child does.
		drops, since := 0, 0
		for m := range up(r) {
			if s := r.started(m); s != since {
				drops, since = 0, s
			}
			for _, d := range r.HeartbeatDrops {
				if d == m {
					drops++
				}
			}
			if drops > 0 {
				om.Sample(targets.LanectlDropped+lbl(r, `lane="heartbeat",peer="1"`), ts(m), float64(drops))
			}
		}
	}
	return om.Close()
}

// family is a counter's OpenMetrics family name: its series' name without
// the _total suffix.
func family(counter string) string { return strings.TrimSuffix(counter, "_total") }
