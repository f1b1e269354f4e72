package transport

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
	"sync"

	"github.com/lanectl/lanectl/lanes"
)

// The lane transport's wire format. Every connection carries one lane from
// one node to one other node and starts with a fixed preamble written by the
// dialer:
//
//	magic "LNRT" | version u8 | lane u8 | reserved u16 | from u64 | to u64
//
// followed by frames in either direction:
//
//	kind u8 | length u32 | crc32c(payload) u32 | payload
//
// A message frame's payload is the raft group and the marshalled message:
//
//	group u64 | raftpb.Message
//
// and a snapshot-begin frame's is the snapshot's data length, the group and
// the MsgSnap without its data:
//
//	total u64 | group u64 | raftpb.Message
//
// All raft groups' messages between two nodes share the connections of
// their lanes; the group tells the receiver which raft instance a message
// is for.
//
// The dialer sends message, snapshot-begin and snapshot-chunk frames; the
// acceptor answers only with status frames (a snapshot's outcome, or why it
// is closing the connection). All integers are big-endian.
const (
	wireMagic        = "LNRT"
	wireVersion      = 2
	preambleLen      = 24
	frameHeaderLen   = 9
	groupPrefix      = 8  // raft group, before a message frame's message bytes
	snapBeginPrefix  = 16 // total snapshot data length and raft group, before the message bytes
	statusPrefix     = 1  // status code, before the reason text
	maxReasonLen     = 512
	minFrameLimitLen = 1 << 10
)

// frameKind says what a frame's payload is.
type frameKind uint8

const (
	// frameMessage carries one raft group id and one marshalled
	// raftpb.Message.
	frameMessage frameKind = 1
	// frameSnapBegin starts a snapshot: the total data length, the raft
	// group, then the MsgSnap marshalled without its snapshot data. Exactly that many bytes
	// of frameSnapChunk follow.
	frameSnapBegin frameKind = 2
	// frameSnapChunk carries the next piece of the snapshot data.
	frameSnapChunk frameKind = 3
	// frameStatus travels from acceptor to dialer: a snapshot's outcome, or
	// the reason the acceptor is about to close the connection.
	frameStatus frameKind = 4
)

func (k frameKind) String() string {
	switch k {
	case frameMessage:
		return "message"
	case frameSnapBegin:
		return "snapshot-begin"
	case frameSnapChunk:
		return "snapshot-chunk"
	case frameStatus:
		return "status"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// statusCode is the first payload byte of a frameStatus.
type statusCode uint8

const (
	statusSnapshotApplied  statusCode = 0
	statusSnapshotRejected statusCode = 1
	statusConnRejected     statusCode = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadFrame is returned (wrapped, with the details) when a connection
// carries bytes that are not a valid lane transport stream: wrong magic or
// version, an unknown lane or frame kind, a checksum mismatch, a frame or
// snapshot over the receiver's limit, or frames out of order.
var ErrBadFrame = errors.New("bad lane transport frame")

func badFrame(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadFrame, fmt.Sprintf(format, args...))
}

// preamble identifies a connection: which lane it carries, and between whom.
type preamble struct {
	version uint8
	lane    lanes.Lane
	from    uint64
	to      uint64
}

func (p preamble) marshal() []byte {
	b := make([]byte, preambleLen)
	copy(b, wireMagic)
	b[4] = p.version
	b[5] = uint8(p.lane)
	binary.BigEndian.PutUint64(b[8:], p.from)
	binary.BigEndian.PutUint64(b[16:], p.to)
	return b
}

// readPreamble reads and checks a connection's preamble. The version is
// checked here because a future version may change everything after it.
func readPreamble(r io.Reader) (preamble, error) {
	var b [preambleLen]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return preamble{}, fmt.Errorf("read preamble: %w", err)
	}
	if string(b[:4]) != wireMagic {
		return preamble{}, badFrame("preamble starts with %q, want %q: not a lane transport connection", b[:4], wireMagic)
	}
	p := preamble{
		version: b[4],
		lane:    lanes.Lane(b[5]),
		from:    binary.BigEndian.Uint64(b[8:]),
		to:      binary.BigEndian.Uint64(b[16:]),
	}
	if p.version != wireVersion {
		return p, badFrame("protocol version %d, this node speaks version %d", p.version, wireVersion)
	}
	if int(p.lane) >= lanes.NumLanes {
		return p, badFrame("preamble names lane %d, which does not exist", b[5])
	}
	if p.from == 0 {
		return p, badFrame("preamble has sender id 0")
	}
	return p, nil
}

// putFrameHeader fills the first frameHeaderLen bytes of hdr.
func putFrameHeader(hdr []byte, kind frameKind, payload []byte) {
	hdr[0] = byte(kind)
	binary.BigEndian.PutUint32(hdr[1:5], uint32(len(payload)))
	binary.BigEndian.PutUint32(hdr[5:9], crc32.Checksum(payload, castagnoli))
}

// frameReader reads frames, refusing any whose payload exceeds limit before
// allocating for it.
type frameReader struct {
	r     *bufio.Reader
	limit int
	buf   []byte
	count uint64 // frames read so far, for error messages
	// reserve, when set, is called before each piece of a payload over
	// readStep is allocated, and may wait or fail; release gives back what
	// one payload reserved once it is whole or has failed.
	reserve func(n int) error
	release func(n int)
}

// header reads the next frame header and validates kind and length.
func (fr *frameReader) header() (frameKind, int, uint32, error) {
	var h [frameHeaderLen]byte
	if _, err := io.ReadFull(fr.r, h[:]); err != nil {
		return 0, 0, 0, err
	}
	fr.count++
	kind := frameKind(h[0])
	n := binary.BigEndian.Uint32(h[1:5])
	sum := binary.BigEndian.Uint32(h[5:9])
	if kind < frameMessage || kind > frameStatus {
		return 0, 0, 0, badFrame("frame %d has unknown kind %d", fr.count, h[0])
	}
	if uint64(n) > uint64(fr.limit) {
		return 0, 0, 0, badFrame("frame %d (%s) is %d bytes, over the %d-byte limit", fr.count, kind, n, fr.limit)
	}
	return kind, int(n), sum, nil
}

// readStep is the piece a large payload is read in: memory for a frame
// follows the bytes that arrived, never the length its header announced.
const readStep = 64 << 10

// appendPayload reads a payload of n bytes onto b and checks its sum. A
// payload over readStep is read in readStep pieces that are joined only
// once all of it has arrived, so a sender that announces many bytes and
// sends few costs only what it sent.
func (fr *frameReader) appendPayload(b []byte, kind frameKind, n int, sum uint32) ([]byte, error) {
	start := len(b)
	if n <= readStep {
		b = slices.Grow(b, n)
		m, err := io.ReadFull(fr.r, b[start:start+n])
		b = b[:start+m]
		if err != nil {
			return b, fmt.Errorf("read %s frame payload (%d of %d bytes): %w", kind, m, n, unexpectedEOF(err))
		}
		return b, fr.check(b[start:], kind, sum)
	}
	var pieces []*piece
	reserved := 0
	defer func() {
		// Pieces go back to the pool, not to the garbage collector: a
		// failed frame's memory is the next frame's at once, so the heap
		// follows the budget instead of growing by a GC cycle's garbage.
		for _, p := range pieces {
			piecePool.Put(p)
		}
		if fr.release != nil {
			fr.release(reserved)
		}
	}()
	for got := 0; got < n; {
		size := min(n-got, readStep)
		if fr.reserve != nil {
			if err := fr.reserve(size); err != nil {
				return b, fmt.Errorf("%s frame payload (%d of %d bytes read): %w", kind, got, n, err)
			}
			reserved += size
		}
		p := piecePool.Get().(*piece)
		pieces = append(pieces, p)
		m, err := io.ReadFull(fr.r, p[:size])
		got += m
		if err != nil {
			return b, fmt.Errorf("read %s frame payload (%d of %d bytes): %w", kind, got, n, unexpectedEOF(err))
		}
	}
	b = slices.Grow(b, n)
	for i, p := range pieces {
		b = append(b, p[:min(n-i*readStep, readStep)]...)
	}
	return b, fr.check(b[start:], kind, sum)
}

// piece is one readStep-sized piece of a large payload being read.
type piece [readStep]byte

var piecePool = sync.Pool{New: func() any { return new(piece) }}

func (fr *frameReader) check(p []byte, kind frameKind, sum uint32) error {
	if got := crc32.Checksum(p, castagnoli); got != sum {
		return badFrame("frame %d (%s, %d bytes) checksum %08x, header says %08x: corrupt stream", fr.count, kind, len(p), got, sum)
	}
	return nil
}

// payload reads a payload of n bytes into a buffer reused across small
// frames; the result is valid until the next call. A large frame's buffer
// is not kept, so it does not pin its memory for the connection's life.
func (fr *frameReader) payload(kind frameKind, n int, sum uint32) ([]byte, error) {
	b, err := fr.appendPayload(fr.buf[:0], kind, n, sum)
	if cap(b) <= maxKeptBuffer {
		fr.buf = b[:0]
	} else {
		fr.buf = nil
	}
	return b, err
}

func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// statusPayload encodes a frameStatus payload, truncating the reason so a
// status frame always fits any receiver's limit.
func statusPayload(code statusCode, reason string) []byte {
	if len(reason) > maxReasonLen {
		reason = reason[:maxReasonLen]
	}
	b := make([]byte, 0, statusPrefix+len(reason))
	b = append(b, byte(code))
	return append(b, reason...)
}

// encodeFrame returns header and payload as one slice, for one write.
func encodeFrame(kind frameKind, payload []byte) []byte {
	b := make([]byte, frameHeaderLen+len(payload))
	copy(b[frameHeaderLen:], payload)
	putFrameHeader(b, kind, b[frameHeaderLen:])
	return b
}
