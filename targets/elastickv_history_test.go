package targets_test

import (
	"fmt"
	"time"

	"github.com/lanectl/lanectl/query/promtest"
	"github.com/lanectl/lanectl/targets"
)

// elastickvReplica is one stock elastickv node's synthetic history in the
// shape the captures in elastickvtest show: three raft groups, counters
// per group, no process collector. Times are steps from the start.
type elastickvReplica struct {
	name string
	// restart is the step it restarted for the flag, or -1.
	restart int
	// crash is a step at which it crashed, or -1: it misses that scrape
	// and the next, then runs again with counters from zero.
	crash int
	// dropEvery is one dropped message per dropEvery accepted by the
	// outbound stream.
	dropEvery int
}

func (r elastickvReplica) down(m int) bool { return r.crash >= 0 && m >= r.crash && m < r.crash+2 }

func (r elastickvReplica) started(m int) int {
	s := 0
	if r.restart >= 0 && m >= r.restart {
		s = r.restart
	}
	if r.crash >= 0 && m >= r.crash+2 {
		s = r.crash + 2
	}
	return s
}

// writeElastickvHistory writes steps+1 samples per series, one a step.
func writeElastickvHistory(path string, start time.Time, step time.Duration, steps int, rs []elastickvReplica) error {
	om, err := promtest.CreateOpenMetrics(path)
	if err != nil {
		return err
	}
	ts := func(m int) time.Time { return start.Add(time.Duration(m) * step) }
	lbl := func(r elastickvReplica, extra string) string {
		s := fmt.Sprintf(`job="elastickv",instance="%[1]s:9090",node_id="%[1]s",node_address="%[1]s:50051"`, r.name)
		if extra != "" {
			s += "," + extra
		}
		return "{" + s + "}"
	}
	groups := []string{"1", "2", "3"}
	each := func(name string, f func(r elastickvReplica, g string, m int) (float64, bool)) {
		for _, r := range rs {
			for _, g := range groups {
				for m := 0; m <= steps; m++ {
					if r.down(m) {
						continue
					}
					if v, ok := f(r, g, m); ok {
						om.Sample(name+lbl(r, `group="`+g+`"`), ts(m), v)
					}
				}
			}
		}
	}
	// Messages accepted by the outbound stream since the process started;
	// group 1 carries the write load.
	stream := func(r elastickvReplica, g string, m int) float64 {
		rate := 5.0
		if g == "1" {
			rate = 600
		}
		return float64(m-r.started(m)) * rate
	}
	om.Family(targets.ElastickvLocalState, "gauge")
	for _, r := range rs {
		for _, g := range groups {
			for _, st := range []string{"follower", "leader"} {
				for m := 0; m <= steps; m++ {
					if r.down(m) {
						continue
					}
					v := 0.0
					if st == "follower" {
						v = 1
					}
					om.Sample(targets.ElastickvLocalState+lbl(r, `group="`+g+`",state="`+st+`"`), ts(m), v)
				}
			}
		}
	}
	om.Family(targets.ElastickvSyncMode, "gauge")
	for _, r := range rs {
		for _, mode := range []string{"nosync", "sync"} {
			for m := 0; m <= steps; m++ {
				if r.down(m) {
					continue
				}
				v := 0.0
				if mode == "sync" {
					v = 1
				}
				om.Sample(targets.ElastickvSyncMode+lbl(r, `mode="`+mode+`"`), ts(m), v)
			}
		}
	}
	om.Family(targets.ElastickvLastContact, "gauge")
	each(targets.ElastickvLastContact, func(_ elastickvReplica, _ string, m int) (float64, bool) {
		return 0.03 + float64(m%5)/100, true
	})
	om.Family(trimTotal(targets.ElastickvSendStream), "counter")
	each(targets.ElastickvSendStream, func(r elastickvReplica, g string, m int) (float64, bool) { return stream(r, g, m), true })
	om.Family(trimTotal(targets.ElastickvDropped), "counter")
	each(targets.ElastickvDropped, func(r elastickvReplica, g string, m int) (float64, bool) {
		return float64(int(stream(r, g, m)) / r.dropEvery), true
	})
	for _, name := range []string{targets.ElastickvErrors, targets.ElastickvStepQueueFull} {
		om.Family(trimTotal(name), "counter")
		each(name, func(elastickvReplica, string, int) (float64, bool) { return 0, true })
	}
	om.Family(trimTotal(targets.ElastickvLeaderChanges), "counter")
	each(targets.ElastickvLeaderChanges, func(elastickvReplica, string, int) (float64, bool) { return 1, true })
	return om.Close()
}

func trimTotal(name string) string { return name[:len(name)-len("_total")] }
