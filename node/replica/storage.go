package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/bbolt"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// File names inside a replica's data directory.
const (
	// RaftDBFile holds the raft log, HardState, membership and the latest
	// snapshot. Every write to it is fsynced.
	RaftDBFile = "raft.db"
	// FSMDBFile holds the key-value state machine and its applied index. It is
	// fsynced after each apply batch only in sync mode.
	FSMDBFile = "fsm.db"
	// snapshotFilePrefix and snapshotFileSuffix name the file that holds
	// the data of the latest snapshot, next to raft.db, which records its
	// metadata and the file's name. Keeping the data out of raft.db keeps
	// a large snapshot from holding raft.db's write lock (and the log
	// appends behind it) while it is written.
	snapshotFilePrefix = "snapshot-"
	snapshotFileSuffix = ".lkv"
)

// openTimeout bounds the wait for bbolt's file lock, so a second replica
// started on the same data directory fails with an error instead of hanging.
const openTimeout = 2 * time.Second

var (
	bucketEntries = []byte("entries")
	bucketMeta    = []byte("meta")
	keyFormat     = []byte("format")
	keyHardState  = []byte("hardstate")
	keyConfState  = []byte("confstate")
	keySnapshot   = []byte("snapshot")
	// keySnapshotFile names the file with the snapshot's data. A snapshot
	// stored without it (raft.db written before snapshot files) carries
	// its data inline.
	keySnapshotFile = []byte("snapshotfile")
)

// Format markers written on creation, so a bbolt file that belongs to
// something else is refused by name rather than read as an empty replica.
const (
	raftDBFormat = "lanectl-raft-v1"
	fsmDBFormat  = "lanectl-fsm-v1"
)

// ErrCorrupt is returned (wrapped, with the file name) when a data file exists
// but its content is not what the replica wrote.
var ErrCorrupt = errors.New("corrupt data file")

// raftStore is the durable copy of the replica's raft state. Each Ready is
// written in one fsynced bbolt transaction before its messages are sent; on
// start the whole state is loaded into a raft.MemoryStorage, which raft reads
// from. Compaction keeps the log short, so the in-memory mirror stays small
// and raft's reads never touch the disk.
type raftStore struct {
	db   *bbolt.DB
	path string
	dir  string
}

// persistedRaft is what a raftStore holds, as loaded on start.
type persistedRaft struct {
	hardState *raftpb.HardState
	confState *raftpb.ConfState
	// snapshot is nil before the first snapshot; snapshotFile is the name
	// of the file its data was read from ("" for inline data).
	snapshot     *raftpb.Snapshot
	snapshotFile string
	// entries follow the snapshot (or index 0) without gaps.
	entries []*raftpb.Entry
}

// openBolt opens an existing bbolt file. bbolt would create a missing file;
// the caller decides beforehand whether the file must exist.
func openBolt(path string, noSync bool) (db *bbolt.DB, err error) {
	// bbolt panics on some damaged pages (a garbage freelist, say) instead
	// of returning an error.
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("open %s: %w: %v", path, ErrCorrupt, p)
		}
	}()
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout, NoSync: noSync})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open %s: locked by another process (is another replica using this data directory?)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w: %w", path, ErrCorrupt, err)
	}
	return db, nil
}

// createRaftStore makes a new raft.db holding only the initial membership.
func createRaftStore(path string, cs *raftpb.ConfState) (*raftStore, error) {
	db, err := openBolt(path, false)
	if err != nil {
		return nil, err
	}
	s := &raftStore{db: db, path: path, dir: filepath.Dir(path)}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketEntries); err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(raftDBFormat)); err != nil {
			return err
		}
		return putProto(meta, keyConfState, cs)
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initialise %s: %w", path, err)
	}
	return s, nil
}

// openRaftStore opens an existing raft.db and loads its content.
func openRaftStore(path string) (*raftStore, *persistedRaft, error) {
	db, err := openBolt(path, false)
	if err != nil {
		return nil, nil, err
	}
	s := &raftStore{db: db, path: path, dir: filepath.Dir(path)}
	st, err := s.load()
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	// A crash between writing a snapshot file and recording it leaves a
	// file nothing refers to.
	if err := s.removeSnapshotFiles(st.snapshotFile); err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	return s, st, nil
}

func (s *raftStore) corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", s.path, ErrCorrupt, fmt.Sprintf(format, args...))
}

func (s *raftStore) load() (st *persistedRaft, err error) {
	// bbolt panics on some kinds of page corruption instead of returning an
	// error; a replica must refuse to start with a message naming the file.
	defer func() {
		if p := recover(); p != nil {
			err = s.corrupt("read failed: %v", p)
		}
	}()
	st = &persistedRaft{hardState: &raftpb.HardState{}}
	err = s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		ents := tx.Bucket(bucketEntries)
		if meta == nil || ents == nil {
			return s.corrupt("missing buckets (not a lanectl raft log)")
		}
		if f := meta.Get(keyFormat); string(f) != raftDBFormat {
			return s.corrupt("format %q, want %q", f, raftDBFormat)
		}
		cs := &raftpb.ConfState{}
		if err := getProto(meta, keyConfState, cs); err != nil {
			return s.corrupt("membership: %v", err)
		}
		st.confState = cs
		if meta.Get(keyHardState) != nil {
			if err := getProto(meta, keyHardState, st.hardState); err != nil {
				return s.corrupt("hard state: %v", err)
			}
		}
		var snapIndex uint64
		if meta.Get(keySnapshot) != nil {
			snap := &raftpb.Snapshot{}
			if err := getProto(meta, keySnapshot, snap); err != nil {
				return s.corrupt("snapshot: %v", err)
			}
			if name := meta.Get(keySnapshotFile); name != nil {
				data, err := s.readSnapshotFile(string(name))
				if err != nil {
					return err
				}
				snap.Data, st.snapshotFile = data, string(name)
			}
			st.snapshot = snap
			snapIndex = snap.GetMetadata().GetIndex()
			st.confState = snap.GetMetadata().GetConfState()
		}
		next := snapIndex + 1
		c := ents.Cursor()
		for k, v := c.Seek(indexKey(next)); k != nil; k, v = c.Next() {
			e := &raftpb.Entry{}
			if err := proto.Unmarshal(v, e); err != nil {
				return s.corrupt("log entry %d: %v", binary.BigEndian.Uint64(k), err)
			}
			if len(k) != 8 || binary.BigEndian.Uint64(k) != e.GetIndex() || e.GetIndex() != next {
				return s.corrupt("log entry under key %x has index %d, want %d", k, e.GetIndex(), next)
			}
			st.entries = append(st.entries, e)
			next++
		}
		last := next - 1
		if c := st.hardState.GetCommit(); c > last {
			return s.corrupt("commit index %d is beyond the last log entry %d", c, last)
		}
		if c := st.hardState.GetCommit(); c < snapIndex {
			return s.corrupt("commit index %d is below the snapshot index %d", c, snapIndex)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return st, nil
}

// save makes one Ready durable: the snapshot (its data in a file of its
// own, replacing the log it covers), the new entries (replacing any
// conflicting suffix) and the HardState.
func (s *raftStore) save(hs *raftpb.HardState, entries []*raftpb.Entry, snap *raftpb.Snapshot) error {
	hasSnap := !raft.IsEmptySnap(snap)
	hasHS := !raft.IsEmptyHardState(hs)
	if !hasSnap && !hasHS && len(entries) == 0 {
		return nil
	}
	var file string
	if hasSnap {
		var err error
		if file, err = s.writeSnapshotFile(snap.GetMetadata().GetIndex(), snap.GetData()); err != nil {
			return err
		}
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta, ents := tx.Bucket(bucketMeta), tx.Bucket(bucketEntries)
		if hasSnap {
			if err := putSnapshot(meta, ents, snap, file, snap.GetMetadata().GetIndex()); err != nil {
				return err
			}
		}
		if len(entries) > 0 {
			if err := deleteFrom(ents, entries[0].GetIndex()); err != nil {
				return err
			}
			for _, e := range entries {
				b, err := proto.Marshal(e)
				if err != nil {
					return err
				}
				if err := ents.Put(indexKey(e.GetIndex()), b); err != nil {
					return err
				}
			}
		}
		if hasHS {
			return putProto(meta, keyHardState, hs)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist raft state to %s: %w", s.path, err)
	}
	if hasSnap {
		return s.removeSnapshotFiles(file)
	}
	return nil
}

// saveSnapshot records a snapshot the replica made of its own state, whose
// data is already in file (see writeSnapshotFile), and drops the log
// entries up to compactTo. Older snapshot files are removed once it is
// recorded.
func (s *raftStore) saveSnapshot(snap *raftpb.Snapshot, file string, compactTo uint64) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return putSnapshot(tx.Bucket(bucketMeta), tx.Bucket(bucketEntries), snap, file, compactTo)
	})
	if err != nil {
		return fmt.Errorf("persist snapshot to %s: %w", s.path, err)
	}
	return s.removeSnapshotFiles(file)
}

// writeSnapshotFile writes a snapshot's data to its own file next to
// raft.db and makes it durable (the file and the directory entry fsynced)
// before returning its name. It is safe to call from any goroutine.
func (s *raftStore) writeSnapshotFile(index uint64, data []byte) (string, error) {
	name := fmt.Sprintf("%s%020d%s", snapshotFilePrefix, index, snapshotFileSuffix)
	f, err := os.CreateTemp(s.dir, name+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("write snapshot %d: %w", index, err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write snapshot %d to %s: %w", index, s.dir, err)
	}
	return name, nil
}

func (s *raftStore) readSnapshotFile(name string) ([]byte, error) {
	if filepath.Base(name) != name || !strings.HasPrefix(name, snapshotFilePrefix) {
		return nil, s.corrupt("snapshot file name %q", name)
	}
	path := filepath.Join(s.dir, name)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: the snapshot it records: %w", s.path, ErrCorrupt, err)
	}
	if err := checkSnapshot(data); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, ErrCorrupt, err)
	}
	return data, nil
}

// removeSnapshotFiles removes every snapshot file (and leftover temporary
// file) but keep.
func (s *raftStore) removeSnapshotFiles(keep string) error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("list snapshot files: %w", err)
	}
	for _, e := range entries {
		n := e.Name()
		if n == keep || !strings.HasPrefix(n, snapshotFilePrefix) || e.IsDir() {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old snapshot file: %w", err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// saveConfState records a membership change applied from the log.
func (s *raftStore) saveConfState(cs *raftpb.ConfState) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		return putProto(tx.Bucket(bucketMeta), keyConfState, cs)
	})
	if err != nil {
		return fmt.Errorf("persist membership to %s: %w", s.path, err)
	}
	return nil
}

func (s *raftStore) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

// putSnapshot records a snapshot's metadata and the file holding its data.
func putSnapshot(meta, ents *bbolt.Bucket, snap *raftpb.Snapshot, file string, compactTo uint64) error {
	if err := putProto(meta, keySnapshot, &raftpb.Snapshot{Metadata: snap.GetMetadata()}); err != nil {
		return err
	}
	if err := meta.Put(keySnapshotFile, []byte(file)); err != nil {
		return err
	}
	if err := putProto(meta, keyConfState, snap.GetMetadata().GetConfState()); err != nil {
		return err
	}
	return deleteThrough(ents, compactTo)
}

func indexKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, i)
}

// deleteFrom removes every entry with index >= from. Keys are collected
// first because deleting under a live bbolt cursor skips elements.
func deleteFrom(b *bbolt.Bucket, from uint64) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(indexKey(from)); k != nil; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return deleteKeys(b, keys)
}

// deleteThrough removes every entry with index <= through.
func deleteThrough(b *bbolt.Bucket, through uint64) error {
	var keys [][]byte
	limit := indexKey(through)
	c := b.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, limit) <= 0; k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	return deleteKeys(b, keys)
}

func deleteKeys(b *bbolt.Bucket, keys [][]byte) error {
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// protoValueVersion prefixes every protobuf value in the meta bucket: it
// tells a value of ours from foreign bytes, and keeps an empty message from
// being stored as an empty value, which bbolt does not tell apart from a
// missing one.
const protoValueVersion = 1

func putProto(b *bbolt.Bucket, key []byte, m proto.Message) error {
	v, err := proto.MarshalOptions{}.MarshalAppend([]byte{protoValueVersion}, m)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, v)
}

func getProto(b *bbolt.Bucket, key []byte, m proto.Message) error {
	v := b.Get(key)
	if v == nil {
		return fmt.Errorf("%s missing", key)
	}
	if len(v) == 0 || v[0] != protoValueVersion {
		return fmt.Errorf("%s: unknown encoding", key)
	}
	return proto.Unmarshal(v[1:], m)
}

// fileExists reports whether path exists; errors other than "not found"
// (permissions, I/O) are returned so they are not mistaken for a fresh start.
func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, os.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
}
