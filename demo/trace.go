package demo

import (
	"math"
	"slices"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/lanes"
	"github.com/lanectl/lanectl/node/transport"
)

// stragglerGrace is how long after a transfer ended an append sent during
// it may still arrive and be counted; later, it counts as lost.
const stragglerGrace = 10 * time.Second

// transferTrace measures what the head-of-line problem is about, in the real
// replicas: while a snapshot of one raft group travels from a leader to the
// slow follower, how long the appends of the other groups, sent by the same
// leader to the same follower, take from the leader's dispatcher queue to
// the follower's transport.
//
// It watches two hooks: every replica's dispatcher Enqueued (a message
// accepted into a lane, with its group) and the follower's transport Trace
// (a message arrived whole). A transfer opens when the snapshot group's
// MsgSnap to the follower is queued, and closes when it has arrived there;
// the lane it was queued in says the sending leader's layout (normal:
// legacy; snapshot: four-lane). Only appends queued while a transfer is
// open are remembered, so memory stays bounded however long the demo runs.
//
// Every method is safe for concurrent use: the hooks run on the replicas'
// raft and transport goroutines and must not block.
type transferTrace struct {
	follower uint64
	group    uint64

	mu sync.Mutex
	// open is the transfer in flight from each sender; closed ones wait
	// for their stragglers until stragglerGrace after their end.
	open   map[uint64]*transfer
	closed []*transfer
	done   map[lanes.Mode]*layoutTrace
	// abandoned counts transfers that never arrived (the follower or the
	// leader restarted, or raft gave the snapshot up).
	abandoned int
	// arrived is signalled, without blocking, when a transfer arrives.
	arrived chan struct{}
}

// transfer is one snapshot in flight and the other groups' appends sent
// behind or beside it.
type transfer struct {
	from       uint64
	mode       lanes.Mode
	bytes      int
	start, end time.Time
	pending    map[appendKey][]time.Time
	delivery   []time.Duration
}

// layoutTrace is what the finished transfers of one layout measured.
type layoutTrace struct {
	transfers int
	bytes     int
	durations []time.Duration
	delivery  []time.Duration
	lost      int
}

// appendKey identifies a MsgApp well enough to pair its enqueue with its
// arrival; appends that share a key are paired in order, the order one
// (peer, lane) connection keeps.
type appendKey struct {
	group                        uint64
	from                         uint64
	term, index, logTerm, commit uint64
	entries                      int
}

func keyOfAppend(group uint64, m *raftpb.Message) appendKey {
	return appendKey{
		group: group, from: m.GetFrom(),
		term: m.GetTerm(), index: m.GetIndex(), logTerm: m.GetLogTerm(), commit: m.GetCommit(),
		entries: len(m.GetEntries()),
	}
}

func newTransferTrace(follower, group uint64) *transferTrace {
	return &transferTrace{
		follower: follower,
		group:    group,
		open:     make(map[uint64]*transfer),
		done:     map[lanes.Mode]*layoutTrace{lanes.ModeLegacy: {}, lanes.ModeFourLane: {}},
		arrived:  make(chan struct{}, 1),
	}
}

// enqueued is every replica's dispatcher Enqueued hook.
func (t *transferTrace) enqueued(group uint64, lane lanes.Lane, m *raftpb.Message, at time.Time) {
	if m.GetTo() != t.follower {
		return
	}
	switch {
	case m.GetType() == raftpb.MessageType_MsgSnap && group == t.group:
		mode := lanes.ModeFourLane
		if lane == lanes.LaneNormal {
			mode = lanes.ModeLegacy
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.open[m.GetFrom()]; ok {
			// Raft sends another snapshot only when the last one failed.
			t.abandoned++
		}
		t.open[m.GetFrom()] = &transfer{
			from: m.GetFrom(), mode: mode, bytes: len(m.GetSnapshot().GetData()), start: at,
			pending: make(map[appendKey][]time.Time),
		}
		t.flush(at)
	case m.GetType() == raftpb.MessageType_MsgApp && group != t.group:
		t.mu.Lock()
		defer t.mu.Unlock()
		if tr, ok := t.open[m.GetFrom()]; ok {
			k := keyOfAppend(group, m)
			tr.pending[k] = append(tr.pending[k], at)
		}
	}
}

// received is the slow follower's transport Trace hook.
func (t *transferTrace) received(ev transport.TraceEvent) {
	if !ev.Received {
		return
	}
	switch {
	case ev.Msg.GetType() == raftpb.MessageType_MsgSnap && ev.Group == t.group:
		t.mu.Lock()
		defer t.mu.Unlock()
		tr, ok := t.open[ev.Peer]
		if !ok {
			return
		}
		delete(t.open, ev.Peer)
		tr.end = ev.Start
		t.closed = append(t.closed, tr)
		t.flush(ev.Start)
		select {
		case t.arrived <- struct{}{}:
		default:
		}
	case ev.Msg.GetType() == raftpb.MessageType_MsgApp && ev.Group != t.group:
		k := keyOfAppend(ev.Group, ev.Msg)
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, tr := range t.transfersOf(ev.Peer) {
			if q := tr.pending[k]; len(q) > 0 {
				tr.delivery = append(tr.delivery, ev.Start.Sub(q[0]))
				if len(q) == 1 {
					delete(tr.pending, k)
				} else {
					tr.pending[k] = q[1:]
				}
				return
			}
		}
	}
}

// transfersOf is every transfer from sender still collecting, oldest
// first. Called with mu held.
func (t *transferTrace) transfersOf(sender uint64) []*transfer {
	var out []*transfer
	for _, tr := range t.closed {
		if tr.from == sender {
			out = append(out, tr)
		}
	}
	if tr, ok := t.open[sender]; ok {
		out = append(out, tr)
	}
	return out
}

// flush moves closed transfers whose stragglers had their grace into the
// per-layout totals. Called with mu held.
func (t *transferTrace) flush(now time.Time) {
	t.closed = slices.DeleteFunc(t.closed, func(tr *transfer) bool {
		if len(tr.pending) > 0 && now.Sub(tr.end) < stragglerGrace {
			return false
		}
		t.finish(tr)
		return true
	})
}

func (t *transferTrace) finish(tr *transfer) {
	l := t.done[tr.mode]
	l.transfers++
	l.bytes = max(l.bytes, tr.bytes)
	l.durations = append(l.durations, tr.end.Sub(tr.start))
	l.delivery = append(l.delivery, tr.delivery...)
	for _, q := range tr.pending {
		l.lost += len(q)
	}
}

// result finishes every transfer that arrived (their stragglers had the
// time they had) and summarises both layouts; a transfer still in flight
// is counted as abandoned.
func (t *transferTrace) result() (legacy, fourLane TransferLayout, abandoned int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.closed {
		t.finish(tr)
	}
	t.closed = nil
	abandoned = t.abandoned + len(t.open)
	clear(t.open)
	return t.done[lanes.ModeLegacy].summary(lanes.ModeLegacy), t.done[lanes.ModeFourLane].summary(lanes.ModeFourLane), abandoned
}

func (l *layoutTrace) summary(mode lanes.Mode) TransferLayout {
	out := TransferLayout{Layout: mode.String(), Transfers: l.transfers, SnapshotBytes: l.bytes, Lost: l.lost}
	if l.transfers > 0 {
		out.TransferP50 = ptrSeconds(quantile(l.durations, 0.5))
	}
	out.Appends = len(l.delivery)
	if len(l.delivery) > 0 {
		out.DeliveryP50 = ptrSeconds(quantile(l.delivery, 0.5))
		out.DeliveryP99 = ptrSeconds(quantile(l.delivery, 0.99))
		out.DeliveryMax = ptrSeconds(quantile(l.delivery, 1))
	}
	return out
}

// quantile is the nearest-rank q-quantile of d, which it sorts.
func quantile(d []time.Duration, q float64) time.Duration {
	slices.Sort(d)
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func ptrSeconds(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}
