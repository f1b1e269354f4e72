package replica

import (
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/lanectl/lanectl/node"
	"github.com/lanectl/lanectl/node/replica/status"
)

// group is one raft group of a replica: its RawNode, raft log (raft.db) and
// state machine (fsm.db), owned by the group's own raft goroutine (loop).
// Every member of the cluster runs the same groups, with the same raft ids;
// the group id travels with each raft message so the receiving replica
// hands it to the right group.
type group struct {
	r   *Replica
	id  uint64
	log *slog.Logger
	dir string

	store   *raftStore
	kv      *kvStore
	ms      *raft.MemoryStorage
	rn      *raft.RawNode
	dg      *node.Group
	metrics groupMetrics

	recvc   chan *raftpb.Message
	propc   chan proposal
	forcec  chan forceRequest
	movec   chan moveRequest
	stopped chan struct{} // closed when the group's raft loop has exited
	status  atomic.Pointer[status.Group]

	lastContact atomic.Int64 // unix nanoseconds; 0 = never
	isLeader    atomic.Bool
	// snapc brings a snapshot made off the raft goroutine back to it;
	// snapWG waits for the goroutine making it.
	snapc  chan *snapshotJob
	snapWG sync.WaitGroup

	// longestIter is the longest raft loop iteration, in nanoseconds,
	// since TakeLongestIteration last read it.
	longestIter atomic.Int64

	// Owned by the raft goroutine.
	confState      *raftpb.ConfState
	snapIndex      uint64
	applied        uint64
	lead           uint64
	ticks          uint64
	readSeq        uint64
	leaderCommit   uint64
	leaderCommitAt time.Time
	force          *forceState
	snapping       bool // a snapshot is being made (see startSnapshot)
	isolated       uint64
	installed      uint64
	props          []proposal
	// stopping is set once Run's context is cancelled; handOffTo is the
	// follower a stopping leader hands leadership to.
	stopping  bool
	handOffTo uint64
}

// groupDirPrefix names the data directories of groups 1 and up,
// DataDir/group-1 and so on. Group 0 keeps raft.db and fsm.db in DataDir
// itself, where a single-group replica has always kept them.
const groupDirPrefix = "group-"

func groupDir(dataDir string, id uint64) string {
	if id == 0 {
		return dataDir
	}
	return filepath.Join(dataDir, groupDirPrefix+strconv.FormatUint(id, 10))
}

// checkGroupDirs refuses a data directory written with another group count:
// keys are assigned to groups by hash modulo the count, so a changed count
// would look for existing keys in the wrong group.
func checkGroupDirs(dataDir string, groups int) error {
	entries, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data directory: %w", err)
	}
	have := 0
	for _, e := range entries {
		n, ok := strings.CutPrefix(e.Name(), groupDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			continue
		}
		if id >= uint64(groups) {
			return fmt.Errorf("%s holds raft group %d but the replica runs %d groups: the group count of a data directory cannot change", dataDir, id, groups)
		}
		if ok, err := fileExists(filepath.Join(groupDir(dataDir, id), RaftDBFile)); err != nil {
			return err
		} else if ok {
			have++
		}
	}
	zero, err := fileExists(filepath.Join(dataDir, RaftDBFile))
	if err != nil {
		return err
	}
	if zero && have != groups-1 {
		return fmt.Errorf("%s holds %d raft groups but the replica runs %d: the group count of a data directory cannot change", dataDir, have+1, groups)
	}
	if !zero && have > 0 {
		return fmt.Errorf("%s holds raft groups 1 and up but not group 0 (%s): refusing to start with part of the replica's state", dataDir, RaftDBFile)
	}
	return nil
}

// KeyGroup is the raft group key belongs to in a replica of groups groups:
// FNV-1a 64 of the key modulo the group count. Every replica computes the
// same assignment, which changes if the count does (see checkGroupDirs).
func KeyGroup(key string, groups int) uint64 {
	if groups <= 1 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return h.Sum64() % uint64(groups)
}

func (r *Replica) groupFor(key string) *group {
	return r.groups[KeyGroup(key, len(r.groups))]
}

// openGroup opens (or initialises) group id's data and starts its RawNode.
// On error the returned group, if not nil, holds files to release.
func (r *Replica) openGroup(id uint64) (*group, error) {
	g := &group{
		r:       r,
		id:      id,
		log:     r.log.With("group", id),
		dir:     groupDir(r.cfg.DataDir, id),
		dg:      r.disp.Group(id),
		recvc:   make(chan *raftpb.Message, inboundQueue),
		propc:   make(chan proposal),
		forcec:  make(chan forceRequest),
		movec:   make(chan moveRequest),
		snapc:   make(chan *snapshotJob, 1),
		stopped: make(chan struct{}),
	}
	if err := g.openData(); err != nil {
		return g, fmt.Errorf("group %d: %w", id, err)
	}
	var err error
	if g.metrics, err = r.metrics.forGroup(id, g.lastContactSeconds); err != nil {
		return g, err
	}
	if err := g.startRaft(); err != nil {
		return g, fmt.Errorf("group %d: %w", id, err)
	}
	return g, nil
}

func (g *group) startRaft() error {
	rc := &raft.Config{
		ID:                        g.r.self.ID,
		ElectionTick:              g.r.cfg.ElectionTick,
		HeartbeatTick:             g.r.cfg.HeartbeatTick,
		Storage:                   g.ms,
		Applied:                   g.applied,
		MaxSizePerMsg:             g.r.cfg.MaxSizePerMsg,
		MaxInflightMsgs:           g.r.cfg.MaxInflightMsgs,
		MaxUncommittedEntriesSize: 1 << 30,
		// CheckQuorum and PreVote keep a replica that restarts (which is
		// what a rollout does to each one) from disrupting a healthy leader.
		CheckQuorum: true,
		PreVote:     true,
		Logger:      raftLogger{g.log.With("component", "raft")},
	}
	rn, err := raft.NewRawNode(rc)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	g.rn = rn
	return nil
}

// close releases the group's files.
func (g *group) close() error {
	var errs []error
	if g.kv != nil {
		errs = append(errs, g.kv.close())
	}
	if g.store != nil {
		errs = append(errs, g.store.close())
	}
	return errors.Join(errs...)
}
