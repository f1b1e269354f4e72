package replica_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/nodetest"
	"github.com/lanectl/lanectl/node/replica"
)

// keyIn returns a key that belongs to group among groups.
func keyIn(prefix string, group uint64, groups int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("%s-%d", prefix, i)
		if replica.KeyGroup(k, groups) == group {
			return k
		}
	}
}

// TestMultiGroupClusterReplicatesEveryGroup runs four raft groups on three
// replicas over loopback TCP, the replicas in both layouts: every group
// elects a leader, a write in each group reaches every replica, and
// /status, /healthz and /metrics cover every group.
func TestMultiGroupClusterReplicatesEveryGroup(t *testing.T) {
	const groups = 4
	opts := testOptions(nodetest.FourLane(), nodetest.Legacy(), nodetest.FourLane())
	opts.Groups = groups
	c := nodetest.StartCluster(t, 3, opts)
	leaders := c.WaitLeaders(groups, waitLong)
	t.Logf("group leaders: %v", leaders)

	for g := range uint64(groups) {
		key := keyIn("k", g, groups)
		via := int(g) % c.N() // through leaders and followers alike
		res, err := c.PutResult(via, key, value(key))
		if err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
		if res.Group != g {
			t.Errorf("PUT %s answered group %d, want %d", key, res.Group, g)
		}
		for i := range c.N() {
			c.WaitGroupApplied(i, g, res.Index, waitLong)
			got, ok, err := c.Get(i, key)
			if err != nil || !ok || !bytes.Equal(got, value(key)) {
				t.Errorf("%s: GET %s (group %d) = %q %v %v, want %q", c.Name(i), key, g, got, ok, err, value(key))
			}
		}
	}

	for i := range c.N() {
		st, err := c.Status(i)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Groups) != groups {
			t.Fatalf("%s: /status lists %d groups, want %d", c.Name(i), len(st.Groups), groups)
		}
		for g, gs := range st.Groups {
			if gs.ID != uint64(g) || gs.Leader != c.Name(leaders[g]) {
				t.Errorf("%s: /status group %d = id %d leader %q, want leader %s", c.Name(i), g, gs.ID, gs.Leader, c.Name(leaders[g]))
			}
		}
		if st.Role != st.Groups[0].Role || st.Applied != st.Groups[0].Applied {
			t.Errorf("%s: top-level fields (%s, applied %d) are not group 0's (%s, applied %d)", c.Name(i), st.Role, st.Applied, st.Groups[0].Role, st.Groups[0].Applied)
		}
		c.WaitFor(waitLong, func() (bool, string) {
			code, body, err := c.Health(i)
			return err == nil && code == 200 && strings.Contains(body, fmt.Sprintf("%d groups serving", groups)), fmt.Sprintf("%s /healthz: %d %s %v", c.Name(i), code, body, err)
		})
		checkGroupSeries(t, c, i, groups)
	}
}

// checkGroupSeries: each per-group raft series has one row per group; the
// dispatcher's series have no group label, since the groups share its
// queues.
func checkGroupSeries(t *testing.T, c *nodetest.Cluster, i, groups int) {
	t.Helper()
	text, err := c.Metrics(i)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{replica.MetricTerm, replica.MetricCommitIndex, replica.MetricAppliedIndex, replica.MetricLastContact, replica.MetricIsLeader, replica.MetricLeaderChanges} {
		seen := map[string]bool{}
		for _, m := range fams[name].GetMetric() {
			seen[labelValue(m, replica.LabelGroup)] = true
		}
		for g := range groups {
			if !seen[fmt.Sprint(g)] {
				t.Errorf("%s: %s has no row for group %d (rows: %v)", c.Name(i), name, g, seen)
			}
		}
		if len(seen) != groups {
			t.Errorf("%s: %s has rows for groups %v, want exactly 0..%d", c.Name(i), name, seen, groups-1)
		}
	}
	for _, name := range []string{node.MetricDispatchSent, node.MetricDispatchDropped, node.MetricDispatchDepth, node.MetricDispatchWait} {
		for _, m := range fams[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == replica.LabelGroup {
					t.Errorf("%s: %s has a group label; the dispatcher's series are per (lane, peer)", c.Name(i), name)
				}
			}
		}
	}
}

// TestForcedSnapshotOfOneGroup: a snapshot forced in one group installs on
// the follower in that group only.
func TestForcedSnapshotOfOneGroup(t *testing.T) {
	const groups = 3
	opts := testOptions(nodetest.FourLane(), nodetest.FourLane(), nodetest.FourLane())
	opts.Groups = groups
	c := nodetest.StartCluster(t, 3, opts)
	leaders := c.WaitLeaders(groups, waitLong)
	const g = 2
	follower := (leaders[g] + 1) % c.N()
	key := keyIn("snap", g, groups)
	if _, err := c.Put(leaders[g], key, value(key)); err != nil {
		t.Fatal(err)
	}
	res, err := c.ForceGroupSnapshot(leaders[g], g, c.Name(follower))
	if err != nil {
		t.Fatal(err)
	}
	if res.Group != g || res.Peer != c.Name(follower) {
		t.Errorf("forced %+v, want group %d to %s", res, g, c.Name(follower))
	}
	c.WaitFor(waitLong, func() (bool, string) {
		st, err := c.Status(follower)
		if err != nil {
			return false, err.Error()
		}
		var installed []uint64
		for _, gs := range st.Groups {
			installed = append(installed, gs.SnapshotsInstalled)
		}
		return fmt.Sprint(installed) == "[0 0 1]", fmt.Sprintf("%s snapshots installed by group: %v, want [0 0 1]", c.Name(follower), installed)
	})
	// The snapshot's data is a file of its own in the group's directory,
	// on the leader that made it and on the follower that received it.
	for _, i := range []int{leaders[g], follower} {
		files, err := filepath.Glob(filepath.Join(c.DataDir(i), fmt.Sprintf("group-%d", g), "snapshot-*.lkv"))
		if err != nil || len(files) != 1 {
			t.Errorf("%s: snapshot files of group %d: %v %v, want one", c.Name(i), g, files, err)
		}
	}
	if _, err := c.ForceGroupSnapshot(leaders[g], groups, c.Name(follower)); err == nil || !strings.Contains(err.Error(), "group 3 does not exist") {
		t.Errorf("forcing a snapshot of group %d: %v, want a refusal naming the group", groups, err)
	}
}

// TestStoppingReplicaHandsOverEveryGroupItLeads: a replica that stops hands
// leadership of each group it leads to another replica, which takes writes
// in that group at once.
func TestStoppingReplicaHandsOverEveryGroupItLeads(t *testing.T) {
	const groups = 3
	rec := &groupHandOffs{}
	c := nodetest.StartCluster(t, 3, nodetest.Options{
		Groups: groups,
		// A 2s election timeout: without the hand-off the followers would
		// wait that long before electing anyone.
		ElectionTick: 100,
		Logger:       slog.New(rec.handler(nil)),
	})
	leaders := c.WaitLeaders(groups, waitLong)
	stopped := leaders[0]
	var led []uint64
	for g, l := range leaders {
		if l == stopped {
			led = append(led, uint64(g))
		}
	}
	c.Stop(stopped)
	got := rec.byGroup()
	for g := range uint64(groups) {
		to, handed := got[g]
		if !handed {
			continue
		}
		if leaders[g] != stopped {
			t.Errorf("group %d, led by %s, was handed over by the stopping %s", g, c.Name(leaders[g]), c.Name(stopped))
		}
		if len(to) != 1 || to[0] == c.Name(stopped) {
			t.Errorf("group %d: hand-offs to %v, want one to another replica", g, to)
			continue
		}
		idx := -1
		for i := range c.N() {
			if c.Name(i) == to[0] {
				idx = i
			}
		}
		key := keyIn("after", g, groups)
		if _, err := c.Put(idx, key, value(key)); err != nil {
			t.Errorf("group %d: PUT on %s right after the hand-off: %v", g, to[0], err)
		}
	}
	for _, g := range led {
		if _, ok := got[g]; !ok {
			t.Errorf("group %d was led by the stopping %s and not handed over (hand-offs: %v)", g, c.Name(stopped), got)
		}
	}
}

// groupHandOffs is a slog handler that keeps, by group, the new leader
// named in each "leadership handed over" record.
type groupHandOffs struct {
	mu sync.Mutex
	to map[uint64][]string
}

func (h *groupHandOffs) handler(attrs []slog.Attr) slog.Handler {
	return &groupHandOffHandler{h: h, attrs: attrs}
}

func (h *groupHandOffs) byGroup() map[uint64][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[uint64][]string, len(h.to))
	for g, to := range h.to {
		out[g] = append([]string(nil), to...)
	}
	return out
}

type groupHandOffHandler struct {
	h     *groupHandOffs
	attrs []slog.Attr
}

func (h *groupHandOffHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *groupHandOffHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "leadership handed over" {
		return nil
	}
	var group uint64
	var leader string
	visit := func(a slog.Attr) bool {
		switch a.Key {
		case "group":
			group = a.Value.Uint64()
		case "leader":
			leader = a.Value.String()
		}
		return true
	}
	for _, a := range h.attrs {
		visit(a)
	}
	r.Attrs(visit)
	h.h.mu.Lock()
	defer h.h.mu.Unlock()
	if h.h.to == nil {
		h.h.to = make(map[uint64][]string)
	}
	h.h.to[group] = append(h.h.to[group], leader)
	return nil
}

func (h *groupHandOffHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return h.h.handler(append(append([]slog.Attr(nil), h.attrs...), as...))
}

func (h *groupHandOffHandler) WithGroup(string) slog.Handler { return h }

// TestTransferLeadershipPutsGroupsOnOneReplica: the leaders of every group
// can be moved to one replica, which is how the cluster benchmark makes all
// groups' appends share one leader's lanes to a follower.
func TestTransferLeadershipPutsGroupsOnOneReplica(t *testing.T) {
	const groups = 3
	opts := testOptions()
	opts.Groups = groups
	c := nodetest.StartCluster(t, 3, opts)
	leaders := c.WaitLeaders(groups, waitLong)
	target := (leaders[0] + 1) % c.N()
	for g, l := range leaders {
		if err := c.Replica(l).TransferLeadership(t.Context(), uint64(g), c.Name(target)); err != nil {
			t.Fatalf("group %d: %v", g, err)
		}
	}
	for g := range uint64(groups) {
		c.WaitFor(waitLong, func() (bool, string) {
			l, why := c.LocalGroupLeader(g)
			return l == target, fmt.Sprintf("group %d: leader %d (%s), want %s", g, l, why, c.Name(target))
		})
	}
	other := (target + 1) % c.N()
	if err := c.Replica(other).TransferLeadership(t.Context(), 0, c.Name(other)); err == nil || !strings.Contains(err.Error(), "not the raft leader") {
		t.Errorf("transfer from a follower: %v, want a not-leader refusal", err)
	}
}
