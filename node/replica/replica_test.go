package replica_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/node/transport"
)

const waitLong = 15 * time.Second

// testOptions gives small snapshot thresholds so tests reach compaction
// after a few hundred writes.
func testOptions(envs ...nodetest.Env) nodetest.Options {
	return nodetest.Options{Env: envs, SnapshotEntries: 50, SnapshotCatchUpEntries: 10}
}

func value(key string) []byte { return []byte("value-of-" + key) }

// putMany writes count keys with the given prefix through replica via and
// returns the highest applied index. A write that fails while the cluster is
// between leaders (a loaded CI machine can delay heartbeats enough to cause
// an election) is retried; writing the same value twice is harmless.
func putMany(t *testing.T, c *nodetest.Cluster, via int, prefix string, count int) uint64 {
	t.Helper()
	var last uint64
	for i := range count {
		key := fmt.Sprintf("%s-%04d", prefix, i)
		var idx uint64
		c.WaitFor(waitLong, func() (bool, string) {
			var err error
			idx, err = c.Put(via, key, value(key))
			return err == nil, fmt.Sprintf("put %s via %s: %v", key, c.Name(via), err)
		})
		last = max(last, idx)
	}
	return last
}

// checkKeys asserts that replica i holds every key with its value.
func checkKeys(t *testing.T, c *nodetest.Cluster, i int, keys []string) {
	t.Helper()
	missing := 0
	for _, k := range keys {
		got, ok, err := c.Get(i, k)
		if err != nil {
			t.Fatalf("get %s from %s: %v", k, c.Name(i), err)
		}
		if !ok || !bytes.Equal(got, value(k)) {
			if missing < 3 {
				t.Errorf("%s: key %s = %q (present %v), want %q", c.Name(i), k, got, ok, value(k))
			}
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d keys missing or wrong", c.Name(i), missing, len(keys))
	}
}

func keyRange(prefix string, count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

func otherEnv(e nodetest.Env) nodetest.Env {
	on, _ := lanes.ParseLanesFlag(e[lanes.FlagEnv])
	if on {
		return e.With(lanes.FlagEnv, "0")
	}
	return e.With(lanes.FlagEnv, "1")
}

func TestClusterInEachMode(t *testing.T) {
	tests := []struct {
		name string
		env  nodetest.Env
	}{
		{"legacy/sync", nodetest.Legacy()},
		{"four-lane/sync", nodetest.FourLane()},
		{"four-lane/nosync", nodetest.FourLane().With(lanes.SyncModeEnv, "nosync")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := nodetest.StartCluster(t, 3, testOptions(tt.env, tt.env, tt.env))
			leader := c.WaitLeader(waitLong)
			wantLanes, _ := lanes.ParseLanesFlag(tt.env[lanes.FlagEnv])
			wantSync, _ := lanes.ParseSyncMode(tt.env[lanes.SyncModeEnv])
			for i := range 3 {
				st, err := c.Status(i)
				if err != nil {
					t.Fatal(err)
				}
				if st.LanesEnabled != wantLanes || st.SyncMode != wantSync.String() {
					t.Errorf("%s: got lanes_enabled=%v sync_mode=%s, want %v %s", c.Name(i), st.LanesEnabled, st.SyncMode, wantLanes, wantSync)
				}
			}

			// Replicates: every replica applies every write.
			last := putMany(t, c, (leader+1)%3, "a", 30)
			for i := range 3 {
				c.WaitApplied(i, last, waitLong)
				checkKeys(t, c, i, keyRange("a", 30))
			}

			// Survives the leader being stopped mid-load, losing no
			// acknowledged write.
			via := (leader + 1) % 3
			acked := writeWhile(t, c, via, "b", func() {
				c.Stop(leader)
			})
			newLeader := c.WaitLeader(waitLong)
			if newLeader == leader {
				t.Fatalf("leader %s still reported after it stopped", c.Name(leader))
			}
			last = putMany(t, c, via, "c", 20)
			for i := range 3 {
				if i == leader {
					continue
				}
				c.WaitApplied(i, last, waitLong)
				checkKeys(t, c, i, acked)
			}
			c.Restart(leader, tt.env)

			// A follower restarted with the other flag value, after the
			// leader compacted past it, catches up by snapshot.
			leader = c.WaitLeader(waitLong)
			follower := (leader + 1) % 3
			c.Stop(follower)
			last = putMany(t, c, leader, "d", 150)
			c.Restart(follower, otherEnv(tt.env))
			c.WaitApplied(follower, last, waitLong)
			st, err := c.Status(follower)
			if err != nil {
				t.Fatal(err)
			}
			if st.SnapshotsInstalled == 0 {
				t.Errorf("%s caught up without a snapshot (applied %d); want it installed from the leader", c.Name(follower), st.Applied)
			}
			if st.LanesEnabled == wantLanes {
				t.Errorf("%s: lanes_enabled=%v after restart with the other flag value", c.Name(follower), st.LanesEnabled)
			}
			for _, prefix := range []string{"a", "c"} {
				n := map[string]int{"a": 30, "c": 20}[prefix]
				checkKeys(t, c, follower, keyRange(prefix, n))
			}
			checkKeys(t, c, follower, keyRange("d", 150))
			checkKeys(t, c, follower, acked)
		})
	}
}

// writeWhile writes keys through replica via from a goroutine while action
// runs, keeps writing until ten more writes are acknowledged after it, and
// returns the keys whose writes were acknowledged.
func writeWhile(t *testing.T, c *nodetest.Cluster, via int, prefix string, action func()) []string {
	t.Helper()
	var (
		mu      sync.Mutex
		acked   []string
		after   = -1
		actDone = make(chan struct{})
		done    = make(chan struct{})
	)
	go func() {
		defer close(done)
		deadline := time.Now().Add(waitLong)
		for i := 0; time.Now().Before(deadline); i++ {
			key := fmt.Sprintf("%s-%04d", prefix, i)
			_, err := c.Put(via, key, value(key))
			mu.Lock()
			if err == nil {
				acked = append(acked, key)
			}
			select {
			case <-actDone:
				if after < 0 {
					after = len(acked)
				}
			default:
			}
			stop := after >= 0 && len(acked) >= after+10
			mu.Unlock()
			if stop {
				return
			}
		}
	}()
	// Let some writes land before acting.
	c.WaitFor(waitLong, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 10, fmt.Sprintf("%d writes acknowledged", len(acked))
	})
	action()
	close(actDone)
	<-done
	mu.Lock()
	defer mu.Unlock()
	if after < 0 || len(acked) < after+10 {
		t.Fatalf("writes did not resume after the action: %d acknowledged, %d before it", len(acked), after)
	}
	return acked
}

func TestMixedModeCluster(t *testing.T) {
	envs := []nodetest.Env{nodetest.FourLane(), nodetest.Legacy(), nodetest.FourLane().With(lanes.SyncModeEnv, "nosync")}
	c := nodetest.StartCluster(t, 3, testOptions(envs...))
	leader := c.WaitLeader(waitLong)
	var last uint64
	for i := range 3 {
		last = max(last, putMany(t, c, i, fmt.Sprintf("via%d", i), 20))
	}
	for i := range 3 {
		c.WaitApplied(i, last, waitLong)
		for j := range 3 {
			checkKeys(t, c, i, keyRange(fmt.Sprintf("via%d", j), 20))
		}
	}
	// A forced snapshot to each follower, whatever their layouts.
	for i := range 3 {
		if i == leader {
			continue
		}
		before, err := c.Status(i)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.ForceSnapshot(leader, c.Name(i))
		if err != nil {
			t.Fatalf("force snapshot to %s: %v", c.Name(i), err)
		}
		if res.Peer != c.Name(i) || res.SnapshotBytes == 0 {
			t.Errorf("force snapshot result %+v, want peer %s and a non-empty snapshot", res, c.Name(i))
		}
		c.WaitFor(waitLong, func() (bool, string) {
			st, err := c.Status(i)
			if err != nil {
				return false, err.Error()
			}
			return st.SnapshotsInstalled > before.SnapshotsInstalled && st.Applied >= res.SnapshotIndex,
				fmt.Sprintf("%s: snapshots installed %d (was %d), applied %d, want >= %d", c.Name(i), st.SnapshotsInstalled, before.SnapshotsInstalled, st.Applied, res.SnapshotIndex)
		})
	}
	last = putMany(t, c, (leader+1)%3, "after", 10)
	for i := range 3 {
		c.WaitApplied(i, last, waitLong)
		checkKeys(t, c, i, keyRange("after", 10))
		checkKeys(t, c, i, keyRange("via0", 20))
	}
}

func TestForceSnapshotRefusals(t *testing.T) {
	c := nodetest.StartCluster(t, 3, testOptions())
	leader := c.WaitLeader(waitLong)
	follower := (leader + 1) % 3
	tests := []struct {
		name string
		via  int
		peer string
		want string
	}{
		{"on a follower", follower, c.Name(leader), "409"},
		{"to the leader itself", leader, c.Name(leader), "400"},
		{"to an unknown peer", leader, "n9", "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.ForceSnapshot(tt.via, tt.peer)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error with status %s", err, tt.want)
			}
		})
	}
}

func TestOneReplicaCluster(t *testing.T) {
	c := nodetest.StartCluster(t, 1, testOptions(nodetest.FourLane()))
	if got := c.WaitLeader(waitLong); got != 0 {
		t.Fatalf("leader index %d, want 0", got)
	}
	putMany(t, c, 0, "solo", 120) // crosses the snapshot threshold
	c.Restart(0, nodetest.Legacy())
	c.WaitLeader(waitLong)
	checkKeys(t, c, 0, keyRange("solo", 120))
	if _, err := c.ForceSnapshot(0, c.Name(0)); err == nil {
		t.Errorf("force snapshot in a one-replica cluster succeeded, want a refusal")
	}
}

func TestHealthzGoesHealthyAsReplicaCatchesUp(t *testing.T) {
	opts := testOptions(nodetest.FourLane(), nodetest.FourLane(), nodetest.FourLane())
	opts.HealthMaxLag = 5
	c := nodetest.StartCluster(t, 3, opts)
	leader := c.WaitLeader(waitLong)
	follower := (leader + 1) % 3
	c.WaitFor(waitLong, func() (bool, string) {
		code, body, err := c.Health(follower)
		return err == nil && code == 200, fmt.Sprintf("%d %s %v", code, body, err)
	})
	c.Stop(follower)
	putMany(t, c, leader, "h", 100)
	c.Restart(follower, nodetest.Legacy())

	var seen []string
	c.WaitFor(waitLong, func() (bool, string) {
		code, body, err := c.Health(follower)
		if err != nil {
			return false, err.Error()
		}
		if len(seen) == 0 || !strings.HasPrefix(seen[len(seen)-1], fmt.Sprint(code)) {
			seen = append(seen, fmt.Sprintf("%d %s", code, strings.TrimSpace(body)))
		}
		return code == 200, body
	})
	if len(seen) < 2 || !strings.HasPrefix(seen[0], "503 ") {
		t.Fatalf("healthz went %q, want 503 (with a reason) before 200", seen)
	}
	lead, err := c.Status(leader)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(follower)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied+5 < lead.Commit-20 { // the leader may have moved on since
		t.Errorf("healthy with applied %d while the leader's commit is %d", st.Applied, lead.Commit)
	}
	t.Logf("healthz sequence: %q", seen)
}

// metricSpecs are the README's lanectl metric names: each one's type and
// label names (node_id included, and group on the raft series that are per
// group).
var metricSpecs = map[string]struct {
	typ    dto.MetricType
	labels []string
}{
	node.MetricDispatchDropped:  {dto.MetricType_COUNTER, []string{"lane", "node_id", "peer"}},
	node.MetricDispatchErrors:   {dto.MetricType_COUNTER, []string{"lane", "node_id", "peer"}},
	node.MetricDispatchSent:     {dto.MetricType_COUNTER, []string{"lane", "node_id", "peer"}},
	node.MetricDispatchDepth:    {dto.MetricType_GAUGE, []string{"lane", "node_id", "peer"}},
	node.MetricDispatchWait:     {dto.MetricType_HISTOGRAM, []string{"lane", "node_id"}},
	node.MetricLanesEnabled:     {dto.MetricType_GAUGE, []string{"node_id"}},
	node.MetricFSMApplySyncMode: {dto.MetricType_GAUGE, []string{"mode", "node_id"}},
	replica.MetricLeaderChanges: {dto.MetricType_COUNTER, []string{"group", "node_id"}},
	replica.MetricTerm:          {dto.MetricType_GAUGE, []string{"group", "node_id"}},
	replica.MetricCommitIndex:   {dto.MetricType_GAUGE, []string{"group", "node_id"}},
	replica.MetricAppliedIndex:  {dto.MetricType_GAUGE, []string{"group", "node_id"}},
	replica.MetricLastContact:   {dto.MetricType_GAUGE, []string{"group", "node_id"}},
	replica.MetricIsLeader:      {dto.MetricType_GAUGE, []string{"group", "node_id"}},
}

func TestMetricsExposeDesignNames(t *testing.T) {
	c := nodetest.StartCluster(t, 3, testOptions(nodetest.FourLane(), nodetest.Legacy(), nodetest.FourLane()))
	leader := c.WaitLeader(waitLong)
	putMany(t, c, leader, "m", 20)
	// Make the leader send a snapshot to a four-lane and a legacy peer, so
	// the snapshot lane has traffic to show.
	for i := range 3 {
		if i != leader {
			if _, err := c.ForceSnapshot(leader, c.Name(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 3 {
		text, err := c.Metrics(i)
		if err != nil {
			t.Fatal(err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
		if err != nil {
			t.Fatalf("%s: parse /metrics: %v", c.Name(i), err)
		}
		st, err := c.Status(i)
		if err != nil {
			t.Fatal(err)
		}
		wantLanes := map[bool][]string{true: {"heartbeat", "other", "replication", "snapshot"}, false: {"heartbeat", "normal"}}[st.LanesEnabled]
		for name, spec := range metricSpecs {
			fam, ok := fams[name]
			if !ok {
				t.Errorf("%s: metric %s missing", c.Name(i), name)
				continue
			}
			if fam.GetType() != spec.typ {
				t.Errorf("%s: %s has type %s, want %s", c.Name(i), name, fam.GetType(), spec.typ)
			}
			lanesSeen := map[string]bool{}
			for _, m := range fam.GetMetric() {
				var got []string
				for _, lp := range m.GetLabel() {
					got = append(got, lp.GetName())
					switch lp.GetName() {
					case "node_id":
						if lp.GetValue() != c.Name(i) {
							t.Errorf("%s: %s has node_id=%q, want %q", c.Name(i), name, lp.GetValue(), c.Name(i))
						}
					case "lane":
						lanesSeen[lp.GetValue()] = true
					case "peer":
						if lp.GetValue() == c.Name(i) || !strings.HasPrefix(lp.GetValue(), "n") {
							t.Errorf("%s: %s has peer=%q, want another replica's name", c.Name(i), name, lp.GetValue())
						}
					}
				}
				if strings.Join(got, ",") != strings.Join(spec.labels, ",") {
					t.Errorf("%s: %s has labels %v, want %v", c.Name(i), name, got, spec.labels)
				}
			}
			if containsLabel(spec.labels, "lane") {
				var got []string
				for _, l := range wantLanes {
					if lanesSeen[l] {
						got = append(got, l)
					}
				}
				if len(got) != len(wantLanes) || len(lanesSeen) != len(wantLanes) {
					t.Errorf("%s: %s has lanes %v, want exactly %v", c.Name(i), name, lanesSeen, wantLanes)
				}
			}
		}
		checkGauge(t, fams, c.Name(i), node.MetricLanesEnabled, nil, map[bool]float64{true: 1, false: 0}[st.LanesEnabled])
		checkGauge(t, fams, c.Name(i), replica.MetricIsLeader, nil, map[bool]float64{true: 1, false: 0}[i == leader])
		checkGauge(t, fams, c.Name(i), node.MetricFSMApplySyncMode, map[string]string{"mode": "sync"}, 1)
		checkGauge(t, fams, c.Name(i), node.MetricFSMApplySyncMode, map[string]string{"mode": "nosync"}, 0)
		checkGauge(t, fams, c.Name(i), replica.MetricTerm, nil, float64(st.Term))
		if i != leader {
			// Heartbeats arrive every tick (20ms); a second is generous.
			if v := fams[replica.MetricLastContact].GetMetric()[0].GetGauge().GetValue(); v <= 0 || v > 1 {
				t.Errorf("%s: follower %s = %v, want (0, 1] seconds", c.Name(i), replica.MetricLastContact, v)
			}
		}
		if i == leader {
			checkGauge(t, fams, c.Name(i), replica.MetricLastContact, nil, 0)
			// The forced snapshots went through the snapshot lane (four-lane
			// leader) or the normal lane (legacy leader). A send is counted
			// once the follower confirmed it, after ForceSnapshot returned.
			lane := map[bool]string{true: "snapshot", false: "normal"}[st.LanesEnabled]
			c.WaitFor(waitLong, func() (bool, string) {
				sent, err := laneSent(c, i, lane)
				return err == nil && sent >= 2, fmt.Sprintf("%s: %v messages sent in the %s lane after two forced snapshots (%v), want >= 2", c.Name(i), sent, lane, err)
			})
		}
	}
}

// laneSent sums elastickv_raft_dispatch_sent_total of one lane on replica i.
func laneSent(c *nodetest.Cluster, i int, lane string) (float64, error) {
	text, err := c.Metrics(i)
	if err != nil {
		return 0, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0, err
	}
	var sent float64
	for _, m := range fams[node.MetricDispatchSent].GetMetric() {
		if labelValue(m, "lane") == lane {
			sent += m.GetCounter().GetValue()
		}
	}
	return sent, nil
}

func containsLabel(labels []string, l string) bool {
	for _, x := range labels {
		if x == l {
			return true
		}
	}
	return false
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func checkGauge(t *testing.T, fams map[string]*dto.MetricFamily, replica, name string, match map[string]string, want float64) {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		ok := true
		for k, v := range match {
			ok = ok && labelValue(m, k) == v
		}
		if ok {
			if got := m.GetGauge().GetValue(); got != want {
				t.Errorf("%s: %s%v = %v, want %v", replica, name, match, got, want)
			}
			return
		}
	}
	t.Errorf("%s: no %s%v series", replica, name, match)
}

func TestRestartRefusesDamagedDataDir(t *testing.T) {
	tests := []struct {
		name   string
		damage func(dir string) error
		file   string
		want   string
	}{
		{"fsm.db missing", func(dir string) error { return os.Remove(filepath.Join(dir, replica.FSMDBFile)) }, replica.FSMDBFile, "is missing"},
		{"raft.db missing", func(dir string) error { return os.Remove(filepath.Join(dir, replica.RaftDBFile)) }, replica.RaftDBFile, "is missing"},
		{"raft.db garbage", func(dir string) error { return overwrite(filepath.Join(dir, replica.RaftDBFile), 0) }, replica.RaftDBFile, "corrupt"},
		{"fsm.db garbage", func(dir string) error { return overwrite(filepath.Join(dir, replica.FSMDBFile), 0) }, replica.FSMDBFile, "corrupt"},
		{"raft.db pages after the meta pages garbage", func(dir string) error { return overwrite(filepath.Join(dir, replica.RaftDBFile), 8192) }, replica.RaftDBFile, "corrupt"},
		{"fsm.db pages after the meta pages garbage", func(dir string) error { return overwrite(filepath.Join(dir, replica.FSMDBFile), 8192) }, replica.FSMDBFile, "corrupt"},
		{"raft.db truncated", func(dir string) error { return os.Truncate(filepath.Join(dir, replica.RaftDBFile), 100) }, replica.RaftDBFile, "corrupt"},
		{"raft.db is someone else's bbolt file", func(dir string) error {
			src, err := os.ReadFile(filepath.Join(dir, replica.FSMDBFile))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, replica.RaftDBFile), src, 0o600)
		}, replica.RaftDBFile, "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := nodetest.StartCluster(t, 1, testOptions())
			c.WaitLeader(waitLong)
			putMany(t, c, 0, "x", 5)
			c.Stop(0)
			dir := c.DataDir(0)
			if err := tt.damage(dir); err != nil {
				t.Fatal(err)
			}
			err := c.TryRestart(0, nil)
			if err == nil {
				t.Fatalf("replica started on a data directory with %s, want an error", tt.name)
			}
			t.Logf("start error: %v", err)
			path := filepath.Join(dir, tt.file)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want it to name %s and say %q", err, path, tt.want)
			}
		})
	}
}

// overwrite replaces everything from offset to the end of the file with
// garbage, keeping the size (offset 0 hits bbolt's meta pages; 8192 the
// pages they point to).
func overwrite(path string, offset int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	size := max(fi.Size()-offset, 8192)
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(size)), offset); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func TestDamagedSnapshotIsRefusedToItsSender(t *testing.T) {
	// Only members may send raft messages, so the test stops a follower
	// and sends the damaged snapshot to the leader in its name.
	c := nodetest.StartCluster(t, 3, testOptions())
	lead := c.WaitLeader(waitLong)
	member := (lead + 1) % c.N()
	c.Stop(member)
	from, to := uint64(member+1), uint64(lead+1)
	tr, err := transport.New(transport.Config{
		ID:      from,
		Listen:  "127.0.0.1:0",
		Peers:   map[uint64]string{to: c.RaftAddr(lead)},
		Handler: func(context.Context, uint64, *raftpb.Message) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	st, err := c.Status(lead)
	if err != nil {
		t.Fatal(err)
	}
	m := &raftpb.Message{
		Type: raftpb.MsgSnap.Enum(), From: new(from), To: new(to), Term: new(st.Term),
		Snapshot: &raftpb.Snapshot{
			Data:     []byte("LKV1 these bytes do not carry the checksum"),
			Metadata: &raftpb.SnapshotMetadata{Index: new(st.Applied + 100), Term: new(st.Term)},
		},
	}
	err = tr.Send(t.Context(), lanes.LaneSnapshot, 0, m)
	if !errors.Is(err, transport.ErrSnapshotRejected) || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("got %v, want ErrSnapshotRejected saying checksum mismatch", err)
	}
	after, err := c.Status(lead)
	if err != nil {
		t.Fatal(err)
	}
	if after.Role != "leader" || after.SnapshotsInstalled != 0 {
		t.Errorf("after the damaged snapshot: role %s, snapshots installed %d; want still leader, none installed", after.Role, after.SnapshotsInstalled)
	}
}

// A write still waiting for its commit when the replica shuts down is
// answered 503 "replica stopped", never 500: a client (and lanectl load)
// must be able to tell a restart from a server fault.
func TestPutInFlightAtShutdownIsServiceUnavailable(t *testing.T) {
	c := nodetest.StartCluster(t, 2, nodetest.Options{
		// A 2s election timeout: the leader, alone after its follower
		// stops, keeps leading (CheckQuorum) well past the proposal.
		ElectionTick:    100,
		ProposalTimeout: time.Minute,
	})
	leader := c.WaitLeader(waitLong)
	if _, err := c.Put(leader, "before", value("before")); err != nil {
		t.Fatal(err)
	}
	c.Stop(1 - leader)
	before := c.Replica(leader).Status().LastIndex
	putErr := make(chan error, 1)
	go func() {
		_, err := c.Put(leader, "stuck", value("stuck"))
		putErr <- err
	}()
	// Without its follower the leader appends the write but cannot commit it.
	c.WaitFor(waitLong, func() (bool, string) {
		st := c.Replica(leader).Status()
		return st.LastIndex > before, fmt.Sprintf("last index %d, commit %d", st.LastIndex, st.Commit)
	})
	c.Stop(leader)
	err := <-putErr
	if err == nil || !strings.Contains(err.Error(), ": 503 ") || !strings.Contains(err.Error(), replica.ErrStopped.Error()) {
		t.Fatalf("PUT in flight at shutdown: %v; want 503 %q", err, replica.ErrStopped)
	}
}

// A leader that is stopped hands its leadership to a follower before it
// exits, so the cluster takes writes again at once instead of after an
// election timeout: what a rollout's restarts need.
func TestStoppingLeaderHandsOverLeadership(t *testing.T) {
	rec := &handOffRecorder{}
	c := nodetest.StartCluster(t, 3, nodetest.Options{
		// A 2s election timeout: without the hand-off the followers would
		// wait that long before electing anyone.
		ElectionTick: 100,
		Logger:       slog.New(rec),
	})
	leader := c.WaitLeader(waitLong)
	if _, err := c.Put(leader, "before", value("before")); err != nil {
		t.Fatal(err)
	}
	c.Stop(leader)
	to := rec.leaders()
	if len(to) != 1 {
		t.Fatalf("stopped leader %s logged hand-offs to %v; want exactly one", c.Name(leader), to)
	}
	next, ok := -1, false
	for i := range c.N() {
		if c.Name(i) == to[0] && i != leader {
			next, ok = i, true
		}
	}
	if !ok {
		t.Fatalf("hand-off to %q, not one of the other replicas", to[0])
	}
	// The new leader takes a write right away: no retry, no election wait.
	if _, err := c.Put(next, "after", value("after")); err != nil {
		t.Fatalf("PUT on %s right after the hand-off: %v", to[0], err)
	}
}

// handOffRecorder is a slog handler that keeps the new leader named in each
// "leadership handed over" record.
type handOffRecorder struct {
	mu sync.Mutex
	to []string
}

func (h *handOffRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *handOffRecorder) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "leadership handed over" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "leader" {
			h.mu.Lock()
			h.to = append(h.to, a.Value.String())
			h.mu.Unlock()
		}
		return true
	})
	return nil
}

func (h *handOffRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *handOffRecorder) WithGroup(string) slog.Handler      { return h }

func (h *handOffRecorder) leaders() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.to...)
}
