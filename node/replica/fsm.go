package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/lanectl/lanectl/lanes"
)

var (
	bucketKV   = []byte("kv")
	keyApplied = []byte("applied")
)

// Command kinds carried in the data of a normal raft entry.
const (
	cmdPut  byte = 1
	cmdNoop byte = 2
	// cmdBatch packs several encoded commands into one entry: a uvarint
	// count, then each command as a uvarint length and its bytes.
	cmdBatch byte = 3
)

// command is one decoded log entry of the state machine. RequestID lets the
// replica that proposed it wake the waiting client once it is applied.
type command struct {
	kind      byte
	requestID uint64
	key       string
	value     []byte
}

func encodeCommand(c command) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*2+len(c.key)+len(c.value))
	b = append(b, c.kind)
	b = binary.AppendUvarint(b, c.requestID)
	if c.kind == cmdPut {
		b = binary.AppendUvarint(b, uint64(len(c.key)))
		b = append(b, c.key...)
		b = append(b, c.value...)
	}
	return b
}

func encodeBatch(cmds [][]byte) []byte {
	size := 1 + binary.MaxVarintLen64
	for _, c := range cmds {
		size += binary.MaxVarintLen64 + len(c)
	}
	b := make([]byte, 0, size)
	b = append(b, cmdBatch)
	b = binary.AppendUvarint(b, uint64(len(cmds)))
	for _, c := range cmds {
		b = binary.AppendUvarint(b, uint64(len(c)))
		b = append(b, c...)
	}
	return b
}

// decodeEntry decodes a normal entry's data: one command or a batch.
func decodeEntry(b []byte) ([]command, error) {
	if len(b) == 0 || b[0] != cmdBatch {
		c, err := decodeCommand(b)
		if err != nil {
			return nil, err
		}
		return []command{c}, nil
	}
	rest := b[1:]
	n, w := binary.Uvarint(rest)
	if w <= 0 || n > uint64(len(rest)) {
		return nil, errors.New("bad batch count")
	}
	rest = rest[w:]
	cmds := make([]command, 0, n)
	for i := uint64(0); i < n; i++ {
		l, w := binary.Uvarint(rest)
		if w <= 0 || l > uint64(len(rest)-w) {
			return nil, fmt.Errorf("batch command %d: bad length", i)
		}
		c, err := decodeCommand(rest[w : w+int(l)])
		if err != nil {
			return nil, fmt.Errorf("batch command %d: %w", i, err)
		}
		cmds = append(cmds, c)
		rest = rest[w+int(l):]
	}
	if len(rest) != 0 {
		return nil, errors.New("batch has trailing bytes")
	}
	return cmds, nil
}

func decodeCommand(b []byte) (command, error) {
	if len(b) == 0 {
		return command{}, errors.New("empty command")
	}
	c := command{kind: b[0]}
	rest := b[1:]
	id, n := binary.Uvarint(rest)
	if n <= 0 {
		return command{}, errors.New("bad request id")
	}
	c.requestID, rest = id, rest[n:]
	switch c.kind {
	case cmdNoop:
		return c, nil
	case cmdPut:
		klen, n := binary.Uvarint(rest)
		if n <= 0 || klen > uint64(len(rest)-n) {
			return command{}, errors.New("bad key length")
		}
		rest = rest[n:]
		c.key = string(rest[:klen])
		c.value = bytes.Clone(rest[klen:])
		return c, nil
	}
	return command{}, fmt.Errorf("unknown command kind %d", c.kind)
}

// kvStore is the replicated state machine: a map of keys to values, mirrored
// in fsm.db together with the index of the last applied entry. Only the raft
// goroutine writes; HTTP handlers read concurrently.
type kvStore struct {
	db   *bbolt.DB
	path string

	mu      sync.RWMutex
	data    map[string][]byte
	bytes   int
	applied uint64
	// recent are the last commands applied, oldest first, at most
	// recentCommands. They travel in snapshots so that a replica that
	// catches up by snapshot can still answer the clients waiting on it for
	// writes the snapshot covers.
	recent []appliedCmd
}

// appliedCmd is a command's request ID and the log index it was applied at.
type appliedCmd struct {
	requestID uint64
	index     uint64
}

// recentCommands bounds kvStore.recent: at a few thousand writes per second
// it covers the seconds a client waits for its write.
const recentCommands = 8192

// openKVStore opens fsm.db, creating it when create is set. In nosync mode
// bbolt skips fsync on commit, which is exactly "no fsync per apply batch".
func openKVStore(path string, mode lanes.SyncMode, create bool) (*kvStore, error) {
	db, err := openBolt(path, mode == lanes.SyncModeNoSync)
	if err != nil {
		return nil, err
	}
	s := &kvStore{db: db, path: path, data: make(map[string][]byte)}
	if create {
		err = db.Update(func(tx *bbolt.Tx) error {
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if _, err := tx.CreateBucket(bucketKV); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte(fsmDBFormat)); err != nil {
				return err
			}
			return meta.Put(keyApplied, indexKey(0))
		})
		if err != nil {
			err = fmt.Errorf("initialise %s: %w", path, err)
		}
	} else {
		err = s.load()
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *kvStore) corrupt(format string, args ...any) error {
	return fmt.Errorf("%s: %w: %s", s.path, ErrCorrupt, fmt.Sprintf(format, args...))
}

func (s *kvStore) load() (err error) {
	// See raftStore.load: bbolt may panic on a damaged page.
	defer func() {
		if p := recover(); p != nil {
			err = s.corrupt("read failed: %v", p)
		}
	}()
	return s.db.View(func(tx *bbolt.Tx) error {
		meta, kv := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
		if meta == nil || kv == nil {
			return s.corrupt("missing buckets (not a lanectl state machine)")
		}
		if f := meta.Get(keyFormat); string(f) != fsmDBFormat {
			return s.corrupt("format %q, want %q", f, fsmDBFormat)
		}
		a := meta.Get(keyApplied)
		if len(a) != 8 {
			return s.corrupt("applied index missing or malformed")
		}
		s.applied = binary.BigEndian.Uint64(a)
		return kv.ForEach(func(k, v []byte) error {
			s.data[string(k)] = bytes.Clone(v)
			s.bytes += len(k) + len(v)
			return nil
		})
	})
}

// get returns a copy-free view of the value; callers must not modify it.
func (s *kvStore) get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}

func (s *kvStore) appliedIndex() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// size returns the number of keys and the bytes of keys plus values.
func (s *kvStore) size() (keys, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.data), s.bytes
}

// apply writes one batch of puts and the new applied index in one
// transaction (fsynced in sync mode), then updates the in-memory map. done
// lists every command of the batch (puts and no-ops) for the recent list.
func (s *kvStore) apply(puts []command, done []appliedCmd, applied uint64) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		kv := tx.Bucket(bucketKV)
		for _, c := range puts {
			if err := kv.Put([]byte(c.key), c.value); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, indexKey(applied))
	})
	if err != nil {
		return fmt.Errorf("apply to %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range puts {
		if old, ok := s.data[c.key]; ok {
			s.bytes -= len(c.key) + len(old)
		}
		s.data[c.key] = c.value
		s.bytes += len(c.key) + len(c.value)
	}
	s.applied = applied
	s.recent = append(s.recent, done...)
	if over := len(s.recent) - recentCommands; over > 0 {
		s.recent = append(s.recent[:0], s.recent[over:]...)
	}
	return nil
}

// snapshotMagic starts every snapshot; the format is the magic, a uvarint
// pair count, then (uvarint key length, key, uvarint value length, value) in
// key order, a uvarint count of recent commands and (uvarint request ID,
// uvarint index) for each, and a CRC-32C of everything before it.
var snapshotMagic = []byte("LKV1")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// kvView is the state machine as of one applied index, frozen: a copy of
// the map (the values are shared, never modified in place: apply and
// restore replace them) and of the recent commands.
type kvView struct {
	data   map[string][]byte
	bytes  int
	recent []appliedCmd
}

// view freezes the current state. It costs a map copy, O(keys), not a
// copy of the values, so the raft goroutine can take it and leave the
// serialising to another goroutine.
func (s *kvStore) view() kvView {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return kvView{data: maps.Clone(s.data), bytes: s.bytes, recent: slices.Clone(s.recent)}
}

// snapshotData serialises the whole current state.
func (s *kvStore) snapshotData() []byte { return s.view().encode() }

// encode serialises the view in the snapshot format (see snapshotMagic).
func (v kvView) encode() []byte {
	keys := slices.Sorted(maps.Keys(v.data))
	b := make([]byte, 0, len(snapshotMagic)+v.bytes+len(keys)*2*binary.MaxVarintLen32+4)
	b = append(b, snapshotMagic...)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		val := v.data[k]
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
		b = binary.AppendUvarint(b, uint64(len(val)))
		b = append(b, val...)
	}
	b = binary.AppendUvarint(b, uint64(len(v.recent)))
	for _, c := range v.recent {
		b = binary.AppendUvarint(b, c.requestID)
		b = binary.AppendUvarint(b, c.index)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodedSnapshot is the content of a snapshot.
type decodedSnapshot struct {
	data   map[string][]byte
	bytes  int
	recent []appliedCmd
}

var errSnapshotTruncated = errors.New("snapshot truncated")

// checkSnapshot verifies a snapshot's magic and checksum: cheap enough to
// run on the transport's goroutine before raft sees the snapshot.
func checkSnapshot(b []byte) error {
	if len(b) < len(snapshotMagic)+4 || !bytes.Equal(b[:len(snapshotMagic)], snapshotMagic) {
		return errors.New("not a lanectl snapshot")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return errors.New("snapshot checksum mismatch")
	}
	return nil
}

// decodeSnapshot parses snapshotData's format.
func decodeSnapshot(b []byte) (decodedSnapshot, error) {
	var out decodedSnapshot
	if err := checkSnapshot(b); err != nil {
		return out, err
	}
	body := b[:len(b)-4]
	rest := body[len(snapshotMagic):]
	uvarint := func() (uint64, error) {
		n, w := binary.Uvarint(rest)
		if w <= 0 {
			return 0, errSnapshotTruncated
		}
		rest = rest[w:]
		return n, nil
	}
	bytesField := func() ([]byte, error) {
		n, err := uvarint()
		if err != nil || n > uint64(len(rest)) {
			return nil, errSnapshotTruncated
		}
		v := rest[:n]
		rest = rest[n:]
		return v, nil
	}
	count, err := uvarint()
	if err != nil {
		return out, err
	}
	out.data = make(map[string][]byte)
	for i := uint64(0); i < count; i++ {
		k, err := bytesField()
		if err != nil {
			return out, err
		}
		v, err := bytesField()
		if err != nil {
			return out, err
		}
		out.data[string(k)] = bytes.Clone(v)
		out.bytes += len(k) + len(v)
	}
	n, err := uvarint()
	if err != nil || n > recentCommands {
		return out, errSnapshotTruncated
	}
	for i := uint64(0); i < n; i++ {
		id, err := uvarint()
		if err != nil {
			return out, err
		}
		idx, err := uvarint()
		if err != nil {
			return out, err
		}
		out.recent = append(out.recent, appliedCmd{requestID: id, index: idx})
	}
	if len(rest) != 0 {
		return out, errors.New("snapshot has trailing bytes")
	}
	return out, nil
}

// restore replaces the whole state with a snapshot's and returns the
// snapshot's recent commands.
func (s *kvStore) restore(snapshot []byte, applied uint64) ([]appliedCmd, error) {
	snap, err := decodeSnapshot(snapshot)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot at index %d: %w", applied, err)
	}
	data := snap.data
	err = s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketKV); err != nil {
			return err
		}
		kv, err := tx.CreateBucket(bucketKV)
		if err != nil {
			return err
		}
		// Sorted keys let bbolt fill pages sequentially.
		kv.FillPercent = 1
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if err := kv.Put([]byte(k), data[k]); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyApplied, indexKey(applied))
	})
	if err != nil {
		return nil, fmt.Errorf("restore snapshot into %s: %w", s.path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.bytes, s.applied, s.recent = data, snap.bytes, applied, snap.recent
	return snap.recent, nil
}

func (s *kvStore) close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}
