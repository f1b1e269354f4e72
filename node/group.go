package node

import (
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3/raftpb"
)

// Group is one raft group's view of a Dispatcher. A node that runs several
// raft groups (multi-raft) sends every group's messages to a peer through
// that peer's one set of lane queues and workers, so a snapshot of one group
// in the legacy normal lane delays the appends of all the others, and the
// four-lane layout keeps them apart. What the dispatcher learns about a
// message (dropped, failed, snapshot delivered) goes back to the group that
// sent it, and only to it.
//
// Each group is driven by its own goroutine, the one that owns its
// raft.RawNode; different groups call Dispatch concurrently.
type Group struct {
	d  *Dispatcher
	id uint64

	// local holds the reports of drops made by Dispatch; owned by the
	// group's goroutine.
	local []report

	// Reports produced by the lane workers.
	mu      sync.Mutex
	remote  []report
	spare   []report
	hasRem  atomic.Bool
	pending chan struct{}
}

// Group returns the handle of raft group id, creating it on first use. The
// id travels with every message to the Transport, which must deliver it
// with the message so the receiver can route it. Group 0 is the one
// Dispatcher.Dispatch, Pending and ApplyReports use.
func (d *Dispatcher) Group(id uint64) *Group {
	d.groupsMu.Lock()
	defer d.groupsMu.Unlock()
	g, ok := d.groups[id]
	if !ok {
		g = &Group{d: d, id: id, pending: make(chan struct{}, 1)}
		d.groups[id] = g
	}
	return g
}

// ID is the raft group's id.
func (g *Group) ID() uint64 { return g.id }

// Dispatch queues each message in its peer's lane, tagged with the group.
// It never blocks: a full lane, an unknown peer or a message type the
// routing table does not know is a counted drop, reported to this group's
// raft at its next ApplyReports.
func (g *Group) Dispatch(msgs []*raftpb.Message) {
	g.d.peersMu.RLock()
	defer g.d.peersMu.RUnlock()
	for _, m := range msgs {
		g.d.dispatch(g, m)
	}
}

// Pending becomes readable when the lane workers have reports waiting for
// this group's ApplyReports.
func (g *Group) Pending() <-chan struct{} { return g.pending }

// ApplyReports tells this group's raft about every drop, transport error
// and finished snapshot of its messages since the last call.
func (g *Group) ApplyReports(r Reporter) {
	for _, rep := range g.local {
		apply(r, rep)
	}
	g.local = g.local[:0]
	if !g.hasRem.Load() {
		return
	}
	g.mu.Lock()
	batch := g.remote
	g.remote = g.spare[:0]
	g.hasRem.Store(false)
	g.mu.Unlock()
	for _, rep := range batch {
		apply(r, rep)
	}
	g.spare = batch
}

func (g *Group) pushRemote(r report) {
	g.mu.Lock()
	g.remote = append(g.remote, r)
	g.hasRem.Store(true)
	g.mu.Unlock()
	select {
	case g.pending <- struct{}{}:
	default:
	}
}
