package replica

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.etcd.io/raft/v3"
)

type proposal struct {
	data []byte
	errc chan error
}

// proposeQueued proposes the queued client commands, packed into as few
// raft entries as maxBatchBytes allows. On a follower each entry is one
// MsgProp to the leader, so packing keeps a burst of writes from
// overflowing the lane forwarded proposals travel in.
func (g *group) proposeQueued() {
	if g.stopping {
		for _, p := range g.props {
			p.errc <- ErrStopped
		}
		clear(g.props)
		g.props = g.props[:0]
	}
	for len(g.props) > 0 {
		n, size := 0, 0
		for n < len(g.props) && (n == 0 || size+len(g.props[n].data) <= maxBatchBytes) {
			size += len(g.props[n].data)
			n++
		}
		batch := g.props[:n]
		var err error
		if n == 1 {
			err = g.rn.Propose(batch[0].data)
		} else {
			cmds := make([][]byte, n)
			for i, p := range batch {
				cmds[i] = p.data
			}
			err = g.rn.Propose(encodeBatch(cmds))
		}
		for _, p := range batch {
			p.errc <- err
		}
		clear(batch)
		g.props = g.props[n:]
	}
	g.props = g.props[:0:0]
}

func (r *Replica) nextRequestID() uint64 {
	return r.reqBase + r.reqSeq.Add(1)
}

// GroupOf returns the raft group key belongs to (see KeyGroup).
func (r *Replica) GroupOf(key string) uint64 { return r.groupFor(key).id }

// Put replicates key=value in the key's raft group and returns the group's
// log index it was applied at, once this replica has applied it. A
// follower's proposal is forwarded to the group's leader by raft. ctx bounds
// the wait.
func (r *Replica) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	if key == "" {
		return 0, errors.New("put: empty key")
	}
	g := r.groupFor(key)
	id := r.nextRequestID()
	wait := r.waiters.register(id)
	defer r.waiters.cancel(id)
	if err := g.propose(ctx, encodeCommand(command{kind: cmdPut, requestID: id, key: key, value: value})); err != nil {
		return 0, fmt.Errorf("put %q: %w", key, err)
	}
	select {
	case idx := <-wait:
		return idx, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("put %q: not applied: %w", key, context.Cause(ctx))
	case <-g.stopped:
		return 0, fmt.Errorf("put %q: %w", key, ErrStopped)
	}
}

func (g *group) propose(ctx context.Context, data []byte) error {
	p := proposal{data: data, errc: make(chan error, 1)}
	select {
	case g.propc <- p:
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-g.stopped:
		return ErrStopped
	}
	err := <-p.errc
	if errors.Is(err, raft.ErrProposalDropped) {
		return ErrNoLeader
	}
	return err
}

// Get returns the value of key in this replica's state machine of the
// key's group. On a follower it may trail the leader by the replication lag.
func (r *Replica) Get(key string) ([]byte, bool) {
	return r.groupFor(key).kv.get(key)
}

// waiters wakes the clients waiting for their proposals to be applied.
type waiters struct {
	mu sync.Mutex
	m  map[uint64]chan uint64
}

func (w *waiters) register(id uint64) <-chan uint64 {
	ch := make(chan uint64, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waiters) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waiters) trigger(id, index uint64) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- index
	}
}
