package holbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica"
	"github.com/lanectl/lanectl/node/transport"
)

// Cluster scenario parameters that have no flag.
const (
	clusterSize       = 3
	clusterTick       = 100 * time.Millisecond
	preloadValueBytes = 1 << 20
	preloadWorkers    = 4
	loadKeys          = 64
	maxWritesInFlight = 32
	leaderWait        = 30 * time.Second
	maxForceAttempts  = 3
)

// RunCluster runs the scenario on real replicas, in both layouts one after
// the other: three replica.Replica values on loopback, each running
// cfg.Groups raft groups with all leaders on one replica, the slow link
// between that leader and one follower (both directions, one bucket each),
// group 0's store preloaded to the snapshot size, steady writes to the other
// groups, and a snapshot of group 0 forced to that follower with
// Replica.ForceSnapshot, which makes raft itself send it.
//
// Raft sends no MsgApp of group 0 to the follower while group 0's snapshot
// is on its way, but the other groups keep appending to it, through the
// same lanes and connections: this is the multi-raft node the lanes are
// for. With one group, the lanes can only show up in heartbeats.
func RunCluster(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	link, err := NewLink(cfg.LinkBytesPerSecond, cfg.LinkChunk)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Scenario: "cluster", Setup: cfg.setup(link)}
	rep.Setup.ElectionTimeout = time.Duration(electionTicks(cfg)) * clusterTick
	rep.Setup.HeartbeatInterval = time.Duration(heartbeatTicks(cfg)) * clusterTick
	rep.Setup.Groups = cfg.Groups
	rep.Notes = []string{
		"queue wait: the leader's elastickv_raft_dispatch_queue_wait_seconds for the lane (all peers, all groups), p50/p99 interpolated in buckets, max is a bucket bound",
		"delivery: enqueue in the leader's dispatcher to arrival at the slow follower",
		"writes: PUT to applied on the leader, for writes started during the transfer",
	}
	if cfg.Groups > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("group 0 sends the snapshot; appends and writes are groups 1-%d's, heartbeats every group's; all %d groups' leader is one replica", cfg.Groups-1, cfg.Groups))
	} else {
		rep.Notes = append(rep.Notes, "one raft group: raft sends no MsgApp to a follower while its snapshot is in flight")
	}
	for _, mode := range []lanes.Mode{lanes.ModeLegacy, lanes.ModeFourLane} {
		cfg.Logger.Info("running head-of-line scenario", "scenario", "cluster", "mode", mode.String())
		res, err := runCluster(ctx, mode, cfg)
		if err != nil {
			return Report{}, fmt.Errorf("%s: %w", mode, err)
		}
		if mode == lanes.ModeLegacy {
			rep.Legacy = res
		} else {
			rep.FourLane = res
		}
	}
	return rep, nil
}

// electionTicks and heartbeatTicks turn the configured durations into raft
// ticks of clusterTick, rounding up.
func electionTicks(cfg Config) int {
	return max(2, int((cfg.ElectionTimeout+clusterTick-1)/clusterTick), heartbeatTicks(cfg)+1)
}

func heartbeatTicks(cfg Config) int {
	return max(1, int((cfg.HeartbeatInterval+clusterTick-1)/clusterTick))
}

// benchCluster is one layout's running cluster: a replica.LocalCluster
// whose replicas dial each other through switches, where the slow link goes
// in.
type benchCluster struct {
	cfg      Config
	lc       *replica.LocalCluster
	replicas []*replica.Replica
	names    []string
	switches map[[2]uint64]*Switch // by (from, to)
	trace    *tracer
}

func startCluster(ctx context.Context, mode lanes.Mode, cfg Config, dir string) (*benchCluster, error) {
	c := &benchCluster{cfg: cfg, switches: make(map[[2]uint64]*Switch), trace: newTracer()}
	for from := range uint64(clusterSize) {
		for to := range uint64(clusterSize) {
			if from != to {
				c.switches[[2]uint64{from + 1, to + 1}] = &Switch{}
			}
		}
	}
	env := map[string]string{
		lanes.FlagEnv:     strconv.FormatBool(mode == lanes.ModeFourLane),
		lanes.SyncModeEnv: lanes.SyncModeNoSync.String(),
	}
	start := replica.LocalStart{Getenv: func(k string) string { return env[k] }}
	lc, err := replica.StartLocalCluster(ctx, replica.LocalClusterConfig{
		Replicas:        clusterSize,
		Dir:             dir,
		Start:           slices.Repeat([]replica.LocalStart{start}, clusterSize),
		Groups:          cfg.Groups,
		TickInterval:    clusterTick,
		HeartbeatTick:   heartbeatTicks(cfg),
		ElectionTick:    electionTicks(cfg),
		SnapshotEntries: math.MaxUint32, // only the forced snapshot
		TransportOf: func(i int) transport.Config {
			id := uint64(i + 1)
			return transport.Config{Dial: c.dialer(id), Trace: c.trace.record(id)}
		},
		Enqueued: c.trace.enqueue,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	c.lc = lc
	for i := range lc.N() {
		c.replicas = append(c.replicas, lc.Replica(i))
		c.names = append(c.names, lc.Name(i))
	}
	return c, nil
}

func (c *benchCluster) dialer(self uint64) transport.DialFunc {
	return func(ctx context.Context, peer uint64, _ lanes.Lane, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return c.switches[[2]uint64{self, peer}].Wrap(conn), nil
	}
}

// stop stops every replica and waits for them.
func (c *benchCluster) stop() error { return c.lc.Close() }

// waitLeader returns the index of the replica all agree leads group 0.
func (c *benchCluster) waitLeader(ctx context.Context) (int, error) {
	deadline := time.Now().Add(leaderWait)
	for {
		i, why := c.lc.Leader()
		if i >= 0 {
			return i, nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no leader agreed on within %v: %s", leaderWait, why)
		}
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// alignLeaders makes replica li the leader of every group and waits until
// every replica agrees, so all groups' appends to a follower share li's
// lanes to it.
func (c *benchCluster) alignLeaders(ctx context.Context, li int) error {
	want := uint64(li + 1)
	deadline := time.Now().Add(leaderWait)
	for time.Now().Before(deadline) {
		aligned := true
		for g := range uint64(c.cfg.Groups) {
			if l, _ := c.lc.GroupLeader(g); l != li {
				aligned = false
			}
			lead := c.replicas[li].Status().Groups[g].LeaderRaftID
			if lead != 0 && lead != want {
				// Refusals (a leader that just lost the group) are retried
				// on the next round.
				_ = c.replicas[lead-1].TransferLeadership(ctx, g, c.names[li])
			}
		}
		if aligned {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("the leaders of all %d groups did not move to %s within %v", c.cfg.Groups, c.names[li], leaderWait)
}

// counterSum reads a counter (summed over its series) from a replica.
func counterSum(g prometheus.Gatherer, name string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, fmt.Errorf("gather %s: %w", name, err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total, nil
}

func (c *benchCluster) leaderChanges() ([]float64, error) {
	out := make([]float64, len(c.replicas))
	for i, r := range c.replicas {
		v, err := counterSum(r.Registry(), replica.MetricLeaderChanges)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// termSum is the sum over groups of the highest term any replica knows:
// it grows by one for each election in any group.
func (c *benchCluster) termSum() uint64 {
	var sum uint64
	for g := range c.cfg.Groups {
		var t uint64
		for _, r := range c.replicas {
			t = max(t, r.Status().Groups[g].Term)
		}
		sum += t
	}
	return sum
}

// writer keeps a steady write load on the leader and times each write.
type writer struct {
	mu        sync.Mutex
	latencies []timedWrite
	failed    int
}

type timedWrite struct {
	at  time.Time
	dur time.Duration
}

// groupKeys returns n key names of the groups keep selects.
func groupKeys(prefix string, n, groups int, keep func(uint64) bool) []string {
	var keys []string
	for i := 0; len(keys) < n; i++ {
		k := fmt.Sprintf("%s/%d", prefix, i)
		if keep(replica.KeyGroup(k, groups)) {
			keys = append(keys, k)
		}
	}
	return keys
}

func (w *writer) run(ctx context.Context, leader func() *replica.Replica, keys []string, every time.Duration, value []byte) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	sem := make(chan struct{}, maxWritesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			// Too many writes stuck: count the tick as a failed write
			// rather than pile up goroutines.
			w.mu.Lock()
			w.failed++
			w.mu.Unlock()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			start := time.Now()
			_, err := leader().Put(ctx, keys[i%len(keys)], value)
			w.mu.Lock()
			defer w.mu.Unlock()
			if err != nil {
				if ctx.Err() == nil {
					w.failed++
				}
				return
			}
			w.latencies = append(w.latencies, timedWrite{at: start, dur: time.Since(start)})
		})
	}
}

func (w *writer) between(from, to time.Time) Latency {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d []time.Duration
	for _, tw := range w.latencies {
		if !tw.at.Before(from) && !tw.at.After(to) {
			d = append(d, tw.dur)
		}
	}
	return summarize(d)
}

// preload fills group 0's store so that a snapshot of it is about size
// bytes.
func preload(ctx context.Context, leader *replica.Replica, groups, size int) error {
	n := (size + preloadValueBytes - 1) / preloadValueBytes
	names := groupKeys("preload", n, groups, func(g uint64) bool { return g == 0 })
	value := make([]byte, preloadValueBytes)
	for i := range value {
		value[i] = byte(i*31 + i>>8)
	}
	keys := make(chan int, n)
	for i := range n {
		keys <- i
	}
	close(keys)
	errc := make(chan error, preloadWorkers)
	var wg sync.WaitGroup
	for range preloadWorkers {
		wg.Go(func() {
			for i := range keys {
				if _, err := leader.Put(ctx, names[i], value); err != nil {
					errc <- fmt.Errorf("preload: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func runCluster(ctx context.Context, mode lanes.Mode, cfg Config) (res ModeResult, err error) {
	dir, err := os.MkdirTemp("", "lanectl-bench-hol-")
	if err != nil {
		return res, fmt.Errorf("data directory: %w", err)
	}
	defer os.RemoveAll(dir)
	c, err := startCluster(ctx, mode, cfg, dir)
	if err != nil {
		return res, err
	}
	defer func() {
		if stopErr := c.stop(); stopErr != nil && err == nil {
			err = fmt.Errorf("stop cluster: %w", stopErr)
		}
	}()

	li, err := c.waitLeader(ctx)
	if err != nil {
		return res, err
	}
	cfg.Logger.Info("cluster up", "mode", mode.String(), "leader", c.names[li])
	if err := c.alignLeaders(ctx, li); err != nil {
		return res, err
	}
	if err := preload(ctx, c.replicas[li], cfg.Groups, cfg.SnapshotBytes); err != nil {
		return res, err
	}
	// The other groups write; with one group, group 0 does.
	others := func(g uint64) bool { return g != 0 || cfg.Groups == 1 }
	loadKeyNames := groupKeys("load", loadKeys, cfg.Groups, others)

	// Writes go to whoever leads; a follower would forward them anyway.
	var current atomic.Int32
	current.Store(int32(li))
	loadCtx, stopLoad := context.WithCancel(ctx)
	var w writer
	var loadWG sync.WaitGroup
	loadWG.Go(func() {
		w.run(loadCtx, func() *replica.Replica { return c.replicas[current.Load()] }, loadKeyNames, cfg.AppendInterval, make([]byte, cfg.EntryBytes))
	})
	defer func() {
		stopLoad()
		loadWG.Wait()
	}()

	var (
		leader               *replica.Replica
		leaderID, followerID uint64
		forced               replica.ForceSnapshotResult
		prepStart, snapStart time.Time
		wait0                map[string]bucketCounts
		drops0, errs0        map[string]float64
		prepElections        int
	)
	for attempt := 1; ; attempt++ {
		if li, err = c.waitLeader(ctx); err != nil {
			return res, err
		}
		if err := c.alignLeaders(ctx, li); err != nil {
			return res, err
		}
		current.Store(int32(li))
		fi := (li + 1) % clusterSize
		leader, leaderID, followerID = c.replicas[li], uint64(li+1), uint64(fi+1)
		// The slow link goes in only now, so the preload does not take
		// ages, and between whoever leads now and one follower.
		for _, sw := range c.switches {
			sw.Set(nil)
		}
		linkOut, _ := NewLink(cfg.LinkBytesPerSecond, cfg.LinkChunk)
		linkBack, _ := NewLink(cfg.LinkBytesPerSecond, cfg.LinkChunk)
		c.switches[[2]uint64{leaderID, followerID}].Set(linkOut)
		c.switches[[2]uint64{followerID, leaderID}].Set(linkBack)
		cfg.Logger.Info("slow link in place", "mode", mode.String(), "leader", c.names[li], "slow_follower", c.names[fi], "attempt", attempt)
		select {
		case <-ctx.Done():
			return res, context.Cause(ctx)
		case <-time.After(cfg.Warmup):
		}

		if wait0, err = waitHistograms(leader.Registry()); err != nil {
			return res, err
		}
		if drops0, err = counterByLane(leader.Registry(), node.MetricDispatchDropped); err != nil {
			return res, err
		}
		if errs0, err = counterByLane(leader.Registry(), node.MetricDispatchErrors); err != nil {
			return res, err
		}
		before, err := c.leaderChanges()
		if err != nil {
			return res, err
		}
		// The transfer window opens when raft has handed the MsgSnap to
		// the dispatcher. Preparing it (a no-op round, the snapshot,
		// compaction) happens on the leader's raft goroutine before that;
		// it is timed apart, and elections it causes are counted apart,
		// since no lane layout can help with them.
		leader.TakeLongestIteration(0)
		prepStart = time.Now()
		forced, err = leader.ForceSnapshot(ctx, 0, c.names[fi])
		snapStart = time.Now()
		after, cerr := c.leaderChanges()
		if cerr != nil {
			return res, cerr
		}
		prepElections += maxDelta(before, after)
		if err == nil {
			break
		}
		if !errors.Is(err, replica.ErrNotLeader) || attempt == maxForceAttempts {
			return res, fmt.Errorf("force snapshot to %s (attempt %d): %w", c.names[fi], attempt, err)
		}
		cfg.Logger.Warn("leader lost while preparing the snapshot; trying again", "mode", mode.String(), "err", err)
	}
	changes0, err := c.leaderChanges()
	if err != nil {
		return res, err
	}
	term0 := c.termSum()
	snapDone, err := c.trace.waitSnapshot(ctx, leaderID, followerID, cfg.transferTimeout())
	if err != nil {
		return res, err
	}
	loopStall := leader.TakeLongestIteration(0)
	wait1, err := waitHistograms(leader.Registry())
	if err != nil {
		return res, err
	}
	changes1, err := c.leaderChanges()
	if err != nil {
		return res, err
	}
	select {
	case <-ctx.Done():
		return res, context.Cause(ctx)
	case <-time.After(cfg.Tail):
	}

	appendLane, _ := lanes.Route(mode, raftpb.MessageType_MsgApp)
	beatLane, _ := lanes.Route(mode, raftpb.MessageType_MsgHeartbeat)
	res = ModeResult{
		Mode:             mode.String(),
		Append:           c.trace.traffic(raftpb.MessageType_MsgApp, leaderID, followerID, appendLane, snapStart, snapDone, others),
		Heartbeat:        c.trace.traffic(raftpb.MessageType_MsgHeartbeat, leaderID, followerID, beatLane, snapStart, snapDone, func(uint64) bool { return true }),
		SnapshotBytes:    forced.SnapshotBytes,
		SnapshotTransfer: snapDone.Sub(snapStart),
		SnapshotPrepare:  snapStart.Sub(prepStart),
		Writes:           w.between(snapStart, snapDone),
		LoopStall:        loopStall,
	}
	res.Append.QueueWait = histogramDelta(wait0, wait1, appendLane.String())
	res.Heartbeat.QueueWait = histogramDelta(wait0, wait1, beatLane.String())
	res.MaxHeartbeatGap = c.trace.heartbeatGap(leaderID, followerID, snapStart, snapDone)

	res.Elections = maxDelta(changes0, changes1)
	res.PrepElections = prepElections
	res.TermChanges = c.termSum() - term0
	if res.Dropped, err = counterDelta(leader.Registry(), node.MetricDispatchDropped, drops0); err != nil {
		return res, err
	}
	if res.Errors, err = counterDelta(leader.Registry(), node.MetricDispatchErrors, errs0); err != nil {
		return res, err
	}
	return res, nil
}

// maxDelta is the number of leader changes between two readings: each
// replica counts every change it sees, so the largest increase.
func maxDelta(before, after []float64) int {
	n := 0
	for i := range after {
		n = max(n, int(after[i]-before[i]))
	}
	return n
}

func counterDelta(g prometheus.Gatherer, name string, before map[string]float64) (map[string]float64, error) {
	now, err := counterByLane(g, name)
	if err != nil {
		return nil, err
	}
	for lane, v := range now {
		now[lane] = v - before[lane]
	}
	return now, nil
}

// tracer collects every node's dispatcher enqueues and transport arrivals.
type tracer struct {
	mu        sync.Mutex
	sent      map[traceKey][]time.Time // enqueue times, in order
	matched   []tracedMsg
	beats     map[beatKey][]time.Time // heartbeat arrivals
	snapshots chan snapshotArrival
}

// beatKey is one group's heartbeats from one node to another.
type beatKey struct {
	from, to, group uint64
}

type snapshotArrival struct {
	from, to uint64
	at       time.Time
}

// traceKey identifies a message well enough to pair its send with its
// arrival; messages that share a key are paired in order, which is the
// order one (peer, lane) connection keeps.
type traceKey struct {
	group                        uint64
	typ                          raftpb.MessageType
	from, to                     uint64
	term, index, logTerm, commit uint64
	entries                      int
	reject                       bool
}

type tracedMsg struct {
	key           traceKey
	sent, arrived time.Time
}

func newTracer() *tracer {
	return &tracer{
		sent:      make(map[traceKey][]time.Time),
		beats:     make(map[beatKey][]time.Time),
		snapshots: make(chan snapshotArrival, 16),
	}
}

func keyOf(group uint64, m *raftpb.Message) traceKey {
	return traceKey{
		group: group, typ: m.GetType(), from: m.GetFrom(), to: m.GetTo(),
		term: m.GetTerm(), index: m.GetIndex(), logTerm: m.GetLogTerm(), commit: m.GetCommit(),
		entries: len(m.GetEntries()), reject: m.GetReject(),
	}
}

// enqueue is every node's dispatcher Enqueued hook.
func (tr *tracer) enqueue(group uint64, _ lanes.Lane, m *raftpb.Message, at time.Time) {
	k := keyOf(group, m)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.sent[k] = append(tr.sent[k], at)
}

// record returns node self's transport Trace hook; it pairs each arrival
// with the enqueue of the same message.
func (tr *tracer) record(self uint64) func(transport.TraceEvent) {
	return func(ev transport.TraceEvent) {
		if !ev.Received {
			return
		}
		k := keyOf(ev.Group, ev.Msg)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if q := tr.sent[k]; len(q) > 0 {
			tr.matched = append(tr.matched, tracedMsg{key: k, sent: q[0], arrived: ev.Start})
			tr.sent[k] = q[1:]
		}
		switch k.typ {
		case raftpb.MessageType_MsgHeartbeat:
			bk := beatKey{from: ev.Peer, to: self, group: ev.Group}
			tr.beats[bk] = append(tr.beats[bk], ev.Start)
		case raftpb.MessageType_MsgSnap:
			select {
			case tr.snapshots <- snapshotArrival{from: ev.Peer, to: self, at: ev.Start}:
			default:
			}
		}
	}
}

// waitSnapshot waits for a snapshot from one node to reach another.
func (tr *tracer) waitSnapshot(ctx context.Context, from, to uint64, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		select {
		case <-ctx.Done():
			return time.Time{}, context.Cause(ctx)
		case <-deadline:
			return time.Time{}, fmt.Errorf("no snapshot reached node %d within %v", to, timeout)
		case s := <-tr.snapshots:
			if s.from == from && s.to == to {
				return s.at, nil
			}
		}
	}
}

// traffic summarises messages of one type from one node to another, of the
// groups keep selects, enqueued in [from, to]. Delivery is enqueue to
// arrival; QueueWait is left for the dispatcher's histogram.
func (tr *tracer) traffic(typ raftpb.MessageType, src, dst uint64, lane lanes.Lane, from, to time.Time, keep func(uint64) bool) Traffic {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var d []time.Duration
	during := 0
	for _, m := range tr.matched {
		if m.key.typ == typ && m.key.from == src && m.key.to == dst && keep(m.key.group) && !m.sent.Before(from) && !m.sent.After(to) {
			d = append(d, m.arrived.Sub(m.sent))
			if m.arrived.Before(to) {
				during++
			}
		}
	}
	lost := 0
	for k, q := range tr.sent {
		if k.typ != typ || k.from != src || k.to != dst || !keep(k.group) {
			continue
		}
		for _, s := range q {
			if !s.Before(from) && !s.After(to) {
				lost++
			}
		}
	}
	return Traffic{Lane: lane.String(), Delivery: summarize(d), Lost: lost, DuringTransfer: during}
}

// heartbeatGap is the longest time any group's follower on dst went without
// a heartbeat from src in [from, to].
func (tr *tracer) heartbeatGap(src, dst uint64, from, to time.Time) time.Duration {
	tr.mu.Lock()
	var all [][]time.Time
	for k, beats := range tr.beats {
		if k.from == src && k.to == dst {
			all = append(all, slices.Clone(beats))
		}
	}
	tr.mu.Unlock()
	var longest time.Duration
	for _, beats := range all {
		r := recorder{beats: beats}
		gap, _ := r.heartbeatGaps(from, to, math.MaxInt64)
		longest = max(longest, gap)
	}
	return longest
}

// bucketCounts is one lane's queue-wait histogram: upper bounds and
// cumulative counts.
type bucketCounts struct {
	bounds []float64
	counts []uint64
	total  uint64
}

func waitHistograms(g prometheus.Gatherer) (map[string]bucketCounts, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, fmt.Errorf("gather %s: %w", node.MetricDispatchWait, err)
	}
	out := make(map[string]bucketCounts)
	for _, mf := range mfs {
		if mf.GetName() != node.MetricDispatchWait {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelValue(m, "lane")] = histogramOf(m.GetHistogram())
		}
	}
	return out, nil
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func histogramOf(h *dto.Histogram) bucketCounts {
	var b bucketCounts
	for _, bk := range h.GetBucket() {
		b.bounds = append(b.bounds, bk.GetUpperBound())
		b.counts = append(b.counts, bk.GetCumulativeCount())
	}
	b.total = h.GetSampleCount()
	return b
}

// histogramDelta estimates the percentiles of the observations made between
// two gatherings of a lane's histogram, interpolating inside buckets as
// PromQL's histogram_quantile does. Max is the upper bound of the highest
// bucket that grew.
func histogramDelta(before, after map[string]bucketCounts, lane string) Latency {
	a, b := after[lane], before[lane]
	if len(a.counts) == 0 {
		return Latency{}
	}
	counts := make([]uint64, len(a.counts))
	for i := range a.counts {
		counts[i] = a.counts[i]
		if i < len(b.counts) {
			counts[i] -= b.counts[i]
		}
	}
	total := a.total - b.total
	if total == 0 {
		return Latency{}
	}
	quantile := func(q float64) time.Duration {
		rank := q * float64(total)
		lower, prev := 0.0, uint64(0)
		for i, c := range counts {
			if float64(c) >= rank {
				if c == prev {
					return seconds(a.bounds[i])
				}
				return seconds(lower + (a.bounds[i]-lower)*(rank-float64(prev))/float64(c-prev))
			}
			lower, prev = a.bounds[i], c
		}
		return seconds(lower)
	}
	l := Latency{Count: int(total), P50: quantile(0.5), P99: quantile(0.99)}
	prev := uint64(0)
	for i, c := range counts {
		if c > prev {
			l.Max = seconds(a.bounds[i])
		}
		prev = c
	}
	if prev < total {
		// Observations above the last bound.
		l.Max = seconds(a.bounds[len(a.bounds)-1])
	}
	return l
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
