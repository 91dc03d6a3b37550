package shm

import (
	"encoding/binary"
	"fmt"
)

// Frame layout constants (SPEC.md §5).
const (
	// FrameHeaderSize is the size of the header of every frame except PAD.
	FrameHeaderSize = 24
	// padHeaderSize is the part of a frame header a PAD frame uses (length, method, flags).
	padHeaderSize = 8
	// frameAlign is the alignment of every frame start in a ring.
	frameAlign = 8
)

// Flags are the frame flag bits (SPEC.md §5.2).
type Flags uint16

const (
	// FlagEnd marks the last fragment of a message.
	FlagEnd Flags = 0x0001
	// FlagError marks a response whose payload is a google.rpc.Status.
	FlagError Flags = 0x0002
	// FlagCancel marks a request-ring frame telling the server to abandon a stream.
	FlagCancel Flags = 0x0004
	// FlagPad marks a padding frame that fills the ring up to its end.
	FlagPad Flags = 0x0008

	knownFlags = FlagEnd | FlagError | FlagCancel | FlagPad
)

// String lists the set flag names, for errors and logs.
func (f Flags) String() string {
	s := ""
	for _, b := range []struct {
		f    Flags
		name string
	}{{FlagEnd, "END"}, {FlagError, "ERROR"}, {FlagCancel, "CANCEL"}, {FlagPad, "PAD"}} {
		if f&b.f != 0 {
			if s != "" {
				s += "|"
			}
			s += b.name
		}
	}
	if rest := f &^ knownFlags; rest != 0 {
		if s != "" {
			s += "|"
		}
		s += fmt.Sprintf("0x%04x", uint16(rest))
	}
	if s == "" {
		return "0"
	}
	return s
}

// FrameHeader is the decoded header of one frame.
type FrameHeader struct {
	// Length is the header plus payload size in bytes; the frame occupies
	// Length rounded up to a multiple of 8 in the ring. For a PAD frame it is
	// the number of bytes skipped.
	Length uint32
	// Method is the method id (see the Method* constants); 0 only in PAD frames.
	Method uint16
	// Flags are the frame flags.
	Flags Flags
	// Stream identifies the call; chosen by the client, never 0.
	Stream uint64
	// TimeoutMicros is the caller's remaining deadline in microseconds when it
	// sent the request (0 = none). Only meaningful in the first request fragment.
	TimeoutMicros uint32
}

// alignFrame rounds n up to the frame alignment.
func alignFrame(n uint64) uint64 { return (n + frameAlign - 1) &^ (frameAlign - 1) }

// putFrameHeader writes h into b[:FrameHeaderSize], including the zero
// reserved word.
func putFrameHeader(b []byte, h FrameHeader) {
	_ = b[FrameHeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:], h.Length)
	binary.LittleEndian.PutUint16(b[4:], h.Method)
	binary.LittleEndian.PutUint16(b[6:], uint16(h.Flags))
	binary.LittleEndian.PutUint64(b[8:], h.Stream)
	binary.LittleEndian.PutUint32(b[16:], h.TimeoutMicros)
	binary.LittleEndian.PutUint32(b[20:], 0)
}

// putPadHeader writes a PAD frame header of the given length into b[:8].
func putPadHeader(b []byte, length uint32) {
	_ = b[padHeaderSize-1]
	binary.LittleEndian.PutUint32(b[0:], length)
	binary.LittleEndian.PutUint16(b[4:], 0)
	binary.LittleEndian.PutUint16(b[6:], uint16(FlagPad))
}

// AppendFrame appends one encoded frame (header, payload and zero padding to
// the 8-byte alignment) to dst. h.Length is computed from the payload. It
// does not validate h; DecodeFrame does.
func AppendFrame(dst []byte, h FrameHeader, payload []byte) []byte {
	h.Length = uint32(FrameHeaderSize + len(payload))
	var hdr [FrameHeaderSize]byte
	putFrameHeader(hdr[:], h)
	dst = append(dst, hdr[:]...)
	dst = append(dst, payload...)
	for pad := alignFrame(uint64(h.Length)) - uint64(h.Length); pad > 0; pad-- {
		dst = append(dst, 0)
	}
	return dst
}

// FrameError reports a frame that breaks the wire rules. The connection that
// carried it is unusable.
type FrameError struct {
	// Field names the offending header field ("length", "flags", ...).
	Field string
	// Reason says what is wrong with it.
	Reason string
}

func (e *FrameError) Error() string { return "shm: bad frame " + e.Field + ": " + e.Reason }

func frameErr(field, format string, args ...any) error {
	return &FrameError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// DecodeFrame decodes the frame at the start of b, which holds the bytes
// from the frame start up to the ring end or up to the producer position,
// whichever is nearer. maxFrame is the segment's max_frame. It returns the
// header, the payload (a sub-slice of b, not a copy) and the number of ring
// bytes the frame occupies (Length rounded up to 8, or Length for PAD).
//
// It applies every rule of SPEC.md §5 that does not depend on the ring
// direction or on the stream state; violations return a *FrameError.
func DecodeFrame(b []byte, maxFrame uint32) (h FrameHeader, payload []byte, size int, err error) {
	if len(b) < padHeaderSize {
		return h, nil, 0, frameErr("length", "only %d bytes available, a frame needs at least %d", len(b), padHeaderSize)
	}
	h.Length = binary.LittleEndian.Uint32(b[0:])
	h.Method = binary.LittleEndian.Uint16(b[4:])
	h.Flags = Flags(binary.LittleEndian.Uint16(b[6:]))
	if h.Flags&^knownFlags != 0 {
		return h, nil, 0, frameErr("flags", "unknown bits in %s", h.Flags)
	}
	if h.Flags&FlagPad != 0 {
		switch {
		case h.Flags != FlagPad:
			return h, nil, 0, frameErr("flags", "PAD combined with other flags (%s)", h.Flags)
		case h.Method != 0:
			return h, nil, 0, frameErr("method", "PAD frame with method %d, want 0", h.Method)
		case h.Length < padHeaderSize || h.Length%frameAlign != 0:
			return h, nil, 0, frameErr("length", "PAD length %d is not a multiple of 8 of at least 8", h.Length)
		case uint64(h.Length) > uint64(len(b)):
			return h, nil, 0, frameErr("length", "PAD length %d exceeds the %d bytes available", h.Length, len(b))
		}
		return h, nil, int(h.Length), nil
	}
	if h.Length < FrameHeaderSize {
		return h, nil, 0, frameErr("length", "%d is less than the header size %d", h.Length, FrameHeaderSize)
	}
	if h.Length > maxFrame {
		return h, nil, 0, frameErr("length", "%d exceeds max_frame %d", h.Length, maxFrame)
	}
	size64 := alignFrame(uint64(h.Length))
	if size64 > uint64(len(b)) {
		return h, nil, 0, frameErr("length", "frame of %d bytes exceeds the %d bytes available", size64, len(b))
	}
	h.Stream = binary.LittleEndian.Uint64(b[8:])
	h.TimeoutMicros = binary.LittleEndian.Uint32(b[16:])
	if r := binary.LittleEndian.Uint32(b[20:]); r != 0 {
		return h, nil, 0, frameErr("reserved", "must be 0, got 0x%08x", r)
	}
	if h.Method == 0 {
		return h, nil, 0, frameErr("method", "0 is reserved")
	}
	if h.Stream == 0 {
		return h, nil, 0, frameErr("stream", "0 is reserved")
	}
	if h.Flags&FlagCancel != 0 {
		if h.Flags != FlagCancel|FlagEnd {
			return h, nil, 0, frameErr("flags", "CANCEL must be sent as CANCEL|END, got %s", h.Flags)
		}
		if h.Length != FrameHeaderSize {
			return h, nil, 0, frameErr("length", "CANCEL frame carries %d payload bytes, want 0", h.Length-FrameHeaderSize)
		}
	}
	return h, b[FrameHeaderSize:h.Length], int(size64), nil
}
