package replica

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func (g *group) installSnapshot(snap *raftpb.Snapshot) error {
	start := time.Now()
	idx := snap.GetMetadata().GetIndex()
	recent, err := g.kv.restore(snap.GetData(), idx)
	if err != nil {
		return err
	}
	// Clients waiting here for writes the snapshot covers get their answer
	// now; their entries will never be applied one by one on this replica.
	for _, c := range recent {
		g.r.waiters.trigger(c.requestID, c.index)
	}
	g.snapIndex, g.applied = idx, idx
	g.installed++
	g.confState = snap.GetMetadata().GetConfState()
	keys, size := g.kv.size()
	g.log.Info("installed snapshot from leader", "index", idx, "bytes", len(snap.GetData()), "keys", keys, "kv_bytes", size,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (g *group) applyEntries(ents []*raftpb.Entry) error {
	if len(ents) == 0 {
		return nil
	}
	var puts []command
	var done []appliedCmd
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				continue // the empty entry a new leader appends
			}
			cmds, err := decodeEntry(e.GetData())
			if err != nil {
				// Every replica skips the same entry, so state stays equal.
				g.log.Error("skipping undecodable log entry", "index", e.GetIndex(), "err", err)
				continue
			}
			for _, c := range cmds {
				if c.kind == cmdPut {
					puts = append(puts, c)
				}
				done = append(done, appliedCmd{c.requestID, e.GetIndex()})
			}
		case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
			if err := g.applyConfChange(e); err != nil {
				return err
			}
		}
	}
	last := ents[len(ents)-1].GetIndex()
	if err := g.kv.apply(puts, done, last); err != nil {
		return err
	}
	g.applied = last
	for _, d := range done {
		g.r.waiters.trigger(d.requestID, d.index)
		g.onForceApplied(d.requestID)
	}
	return nil
}

func (g *group) applyConfChange(e *raftpb.Entry) error {
	var cc raftpb.ConfChangeI
	if e.GetType() == raftpb.EntryConfChange {
		v1 := &raftpb.ConfChange{}
		if err := proto.Unmarshal(e.GetData(), v1); err != nil {
			return fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc = v1
	} else {
		v2 := &raftpb.ConfChangeV2{}
		if err := proto.Unmarshal(e.GetData(), v2); err != nil {
			return fmt.Errorf("decode conf change at %d: %w", e.GetIndex(), err)
		}
		cc = v2
	}
	g.confState = g.rn.ApplyConfChange(cc)
	return g.store.saveConfState(g.confState)
}
