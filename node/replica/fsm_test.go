package replica

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanectl/lanectl/lanes"
)

func TestCommandCodec(t *testing.T) {
	tests := []command{
		{kind: cmdPut, requestID: 1, key: "k", value: []byte("v")},
		{kind: cmdPut, requestID: 1 << 60, key: "key with spaces/and/slashes", value: nil},
		{kind: cmdPut, requestID: 7, key: "big", value: bytes.Repeat([]byte{0}, 1<<16)},
		{kind: cmdNoop, requestID: 42},
	}
	for _, want := range tests {
		got, err := decodeCommand(encodeCommand(want))
		if err != nil {
			t.Fatalf("decode %+v: %v", want, err)
		}
		if got.kind != want.kind || got.requestID != want.requestID || got.key != want.key || !bytes.Equal(got.value, want.value) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	for _, bad := range [][]byte{nil, {9, 1}, {cmdPut}, {cmdPut, 1, 200}} {
		if _, err := decodeCommand(bad); err == nil {
			t.Errorf("decode %v: got no error, want one", bad)
		}
	}
}

func TestKVStoreSnapshotRestore(t *testing.T) {
	dir := t.TempDir()
	src, err := openKVStore(filepath.Join(dir, "a.db"), lanes.SyncModeSync, true)
	if err != nil {
		t.Fatal(err)
	}
	defer src.close()
	var puts []command
	for i := range 100 {
		puts = append(puts, command{kind: cmdPut, key: fmt.Sprintf("k%03d", i), value: []byte(strings.Repeat("x", i))})
	}
	if err := src.apply(puts, []appliedCmd{{requestID: 7, index: 99}, {requestID: 8, index: 100}}, 100); err != nil {
		t.Fatal(err)
	}
	data := src.snapshotData()

	dst, err := openKVStore(filepath.Join(dir, "b.db"), lanes.SyncModeNoSync, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := dst.apply([]command{{kind: cmdPut, key: "stale", value: []byte("gone after restore")}}, nil, 1); err != nil {
		t.Fatal(err)
	}
	recent, err := dst.restore(data, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 || recent[1] != (appliedCmd{requestID: 8, index: 100}) {
		t.Errorf("got recent commands %v, want requests 7 and 8 at 99 and 100", recent)
	}
	if _, ok := dst.get("stale"); ok {
		t.Errorf("key from before the restore survived it")
	}
	if err := dst.close(); err != nil {
		t.Fatal(err)
	}
	// Reopen: the restored state is on disk, not only in memory.
	dst, err = openKVStore(filepath.Join(dir, "b.db"), lanes.SyncModeNoSync, false)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.close()
	if got := dst.appliedIndex(); got != 100 {
		t.Errorf("got applied %d, want 100", got)
	}
	for _, p := range puts {
		if got, ok := dst.get(p.key); !ok || !bytes.Equal(got, p.value) {
			t.Errorf("key %s: got %q %v, want %q", p.key, got, ok, p.value)
		}
	}
	wantKeys, wantBytes := src.size()
	if keys, size := dst.size(); keys != wantKeys || size != wantBytes {
		t.Errorf("got %d keys %d bytes, want %d %d", keys, size, wantKeys, wantBytes)
	}
}

func TestDecodeSnapshotRejectsDamage(t *testing.T) {
	s := &kvStore{data: map[string][]byte{"a": []byte("1"), "b": []byte("22")}, bytes: 5}
	good := s.snapshotData()
	flipped := bytes.Clone(good)
	flipped[6] ^= 0xff
	tests := map[string][]byte{
		"empty":         nil,
		"foreign":       []byte("not a snapshot at all"),
		"truncated":     good[:len(good)-3],
		"flipped byte":  flipped,
		"trailing data": append(bytes.Clone(good[:len(good)-4]), 'x', 0, 0, 0, 0),
	}
	for name, data := range tests {
		if _, err := decodeSnapshot(data); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
	if _, err := decodeSnapshot(good); err != nil {
		t.Errorf("intact snapshot: %v", err)
	}
}

func TestBatchCodec(t *testing.T) {
	a := encodeCommand(command{kind: cmdPut, requestID: 1, key: "a", value: []byte("1")})
	b := encodeCommand(command{kind: cmdNoop, requestID: 2})
	got, err := decodeEntry(encodeBatch([][]byte{a, b}))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].key != "a" || got[0].requestID != 1 || got[1].kind != cmdNoop || got[1].requestID != 2 {
		t.Errorf("got %+v, want the put of a (request 1) and a no-op (request 2)", got)
	}
	single, err := decodeEntry(a)
	if err != nil || len(single) != 1 || single[0].key != "a" {
		t.Errorf("single command entry: got %+v %v, want the put of a", single, err)
	}
	for _, bad := range [][]byte{{cmdBatch}, {cmdBatch, 2, 1, cmdNoop}, append(encodeBatch([][]byte{b}), 0)} {
		if _, err := decodeEntry(bad); err == nil {
			t.Errorf("decode %v: got no error, want one", bad)
		}
	}
}

func TestRecentCommandsBounded(t *testing.T) {
	s, err := openKVStore(filepath.Join(t.TempDir(), "kv.db"), lanes.SyncModeNoSync, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	done := make([]appliedCmd, recentCommands+10)
	for i := range done {
		done[i] = appliedCmd{requestID: uint64(i), index: 1}
	}
	if err := s.apply(nil, done, 1); err != nil {
		t.Fatal(err)
	}
	if len(s.recent) != recentCommands || s.recent[0].requestID != 10 {
		t.Errorf("got %d recent commands starting at request %d, want %d starting at 10", len(s.recent), s.recent[0].requestID, recentCommands)
	}
}
