package shm

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Segment layout (SPEC.md §3). All offsets are from the segment start; all
// integers are little-endian.
const (
	segmentMagic = "OUTRIGSM"
	// WireVersion is the only wire version this package speaks.
	WireVersion uint16 = 1
	// headerSize is the size of the segment header; ring data starts here.
	headerSize = 4096

	offMagic       = 0x00
	offVersion     = 0x08
	offHeaderSize  = 0x0C
	offSegmentSize = 0x10
	offFlags       = 0x18
	offMaxFrame    = 0x1C
	offMaxMessage  = 0x20
	offReserved24  = 0x24
	offReqOffset   = 0x28
	offReqSize     = 0x30
	offRespOffset  = 0x38
	offRespSize    = 0x40
	offServerPID   = 0x48
	offClientPID   = 0x4C
	offServerState = 0x50
	offClientState = 0x54

	// Control lines: each 128-byte line is written by one process only.
	offReqTail            = 0x080 // written by the client (producer of the request ring)
	offReqProducerParked  = 0x088
	offReqHead            = 0x100 // written by the server (consumer of the request ring)
	offReqConsumerParked  = 0x108
	offRespTail           = 0x180 // written by the server (producer of the response ring)
	offRespProducerParked = 0x188
	offRespHead           = 0x200 // written by the client (consumer of the response ring)
	offRespConsumerParked = 0x208
)

// Ring size limits (SPEC.md §3.2).
const (
	MinRingSize     = 4 << 10
	MaxRingSize     = 64 << 20
	DefaultRingSize = 256 << 10
	// DefaultMaxMessage is the default largest message (all fragments of one
	// request or response) a server accepts.
	DefaultMaxMessage = 16 << 20
	// defaultMaxFrameCap caps max_frame chosen by this implementation.
	defaultMaxFrameCap = 64 << 10
)

// Liveness states of a process in the segment header.
const (
	stateAbsent   uint32 = 0
	stateAttached uint32 = 1
	stateClosed   uint32 = 2
)

// layout is the validated content of a segment header.
type layout struct {
	version     uint16
	segmentSize uint64
	maxFrame    uint32
	maxMessage  uint32
	reqOffset   uint64
	reqSize     uint64
	respOffset  uint64
	respSize    uint64
}

// newLayout computes the layout a server creates for the given ring sizes,
// which must already be valid (see ringSizeFor).
func newLayout(reqSize, respSize uint64, maxMessage uint32) layout {
	maxFrame := min(reqSize, respSize) / 4
	if maxFrame > defaultMaxFrameCap {
		maxFrame = defaultMaxFrameCap
	}
	return layout{
		version:     WireVersion,
		segmentSize: headerSize + reqSize + respSize,
		maxFrame:    uint32(maxFrame),
		maxMessage:  maxMessage,
		reqOffset:   headerSize,
		reqSize:     reqSize,
		respOffset:  headerSize + reqSize,
		respSize:    respSize,
	}
}

// ringSizeFor turns a requested ring size into the size a server uses: 0
// means def; other values are rounded up to a power of two and clamped to
// [MinRingSize, maxSize].
func ringSizeFor(requested uint32, def, maxSize uint64) uint64 {
	if requested == 0 {
		return def
	}
	n := uint64(requested)
	if n&(n-1) != 0 {
		n = 1 << bits.Len64(n)
	}
	return max(MinRingSize, min(n, maxSize))
}

// writeHeader initialises a zeroed segment with l.
func writeHeader(mem []byte, l layout, serverPID uint32) {
	copy(mem[offMagic:], segmentMagic)
	le := binary.LittleEndian
	le.PutUint16(mem[offVersion:], l.version)
	le.PutUint32(mem[offHeaderSize:], headerSize)
	le.PutUint64(mem[offSegmentSize:], l.segmentSize)
	le.PutUint32(mem[offFlags:], 0)
	le.PutUint32(mem[offMaxFrame:], l.maxFrame)
	le.PutUint32(mem[offMaxMessage:], l.maxMessage)
	le.PutUint64(mem[offReqOffset:], l.reqOffset)
	le.PutUint64(mem[offReqSize:], l.reqSize)
	le.PutUint64(mem[offRespOffset:], l.respOffset)
	le.PutUint64(mem[offRespSize:], l.respSize)
	le.PutUint32(mem[offServerPID:], serverPID)
	atomic.StoreUint32(word32(mem, offServerState), stateAttached)
}

// HeaderError reports a segment header that breaks SPEC.md §3.
type HeaderError struct {
	Field  string
	Reason string
}

func (e *HeaderError) Error() string { return "shm: bad segment header " + e.Field + ": " + e.Reason }

func headerErr(field, format string, args ...any) error {
	return &HeaderError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// readHeader validates the header of a mapped segment of mappedSize bytes
// created for wire version want.
func readHeader(mem []byte, want uint16) (layout, error) {
	var l layout
	if len(mem) < headerSize {
		return l, headerErr("segment_size", "mapping of %d bytes is smaller than the %d-byte header", len(mem), headerSize)
	}
	if string(mem[offMagic:offMagic+8]) != segmentMagic {
		return l, headerErr("magic", "got %q, want %q", mem[offMagic:offMagic+8], segmentMagic)
	}
	le := binary.LittleEndian
	l.version = le.Uint16(mem[offVersion:])
	if l.version != want {
		return l, headerErr("version", "got %d, want %d", l.version, want)
	}
	if minor := le.Uint16(mem[offVersion+2:]); minor != 0 {
		return l, headerErr("version", "reserved upper half is %d, want 0", minor)
	}
	if hs := le.Uint32(mem[offHeaderSize:]); hs != headerSize {
		return l, headerErr("header_size", "got %d, want %d", hs, headerSize)
	}
	l.segmentSize = le.Uint64(mem[offSegmentSize:])
	if l.segmentSize != uint64(len(mem)) {
		return l, headerErr("segment_size", "header says %d, mapping is %d bytes", l.segmentSize, len(mem))
	}
	if f := le.Uint32(mem[offFlags:]); f != 0 {
		return l, headerErr("flags", "unknown bits 0x%08x", f)
	}
	l.maxFrame = le.Uint32(mem[offMaxFrame:])
	l.maxMessage = le.Uint32(mem[offMaxMessage:])
	l.reqOffset = le.Uint64(mem[offReqOffset:])
	l.reqSize = le.Uint64(mem[offReqSize:])
	l.respOffset = le.Uint64(mem[offRespOffset:])
	l.respSize = le.Uint64(mem[offRespSize:])
	for _, r := range []struct {
		name string
		size uint64
	}{{"request_ring_size", l.reqSize}, {"response_ring_size", l.respSize}} {
		if r.size < MinRingSize || r.size > MaxRingSize || r.size&(r.size-1) != 0 {
			return l, headerErr(r.name, "%d is not a power of two in [%d, %d]", r.size, MinRingSize, MaxRingSize)
		}
	}
	if l.reqOffset != headerSize {
		return l, headerErr("request_ring_offset", "got %d, want %d", l.reqOffset, headerSize)
	}
	if l.respOffset != l.reqOffset+l.reqSize {
		return l, headerErr("response_ring_offset", "got %d, want %d", l.respOffset, l.reqOffset+l.reqSize)
	}
	if l.respOffset+l.respSize != l.segmentSize {
		return l, headerErr("segment_size", "%d does not end where the response ring ends (%d)", l.segmentSize, l.respOffset+l.respSize)
	}
	if l.maxFrame%frameAlign != 0 || l.maxFrame < FrameHeaderSize+frameAlign || uint64(l.maxFrame) > min(l.reqSize, l.respSize)/2 {
		return l, headerErr("max_frame", "%d is not a multiple of 8 in [%d, %d]", l.maxFrame, FrameHeaderSize+frameAlign, min(l.reqSize, l.respSize)/2)
	}
	if l.maxMessage == 0 {
		return l, headerErr("max_message", "must be positive")
	}
	if st := atomic.LoadUint32(word32(mem, offServerState)); st != stateAttached {
		return l, headerErr("server_state", "got %d, want %d (attached)", st, stateAttached)
	}
	return l, nil
}

// word64 returns the 8-byte aligned word at off as an atomic-capable pointer.
// mem must come from mmap (page aligned) and off must be a multiple of 8.
func word64(mem []byte, off int) *uint64 {
	return (*uint64)(unsafe.Pointer(&mem[off : off+8][0]))
}

// word32 returns the 4-byte aligned word at off as an atomic-capable pointer.
func word32(mem []byte, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&mem[off : off+4][0]))
}
