package shm

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Handshake messages (SPEC.md §8). Each is u32 length (of what follows),
// u8 type, body.
const (
	msgHello   byte = 0x01
	msgWelcome byte = 0x02
	msgReject  byte = 0x03
	msgReady   byte = 0x04

	helloMagic = "OSHM"
	// maxHandshakeMsg bounds the length word of any handshake message.
	maxHandshakeMsg = 8192
	// MaxAppIDLen is the longest app id a hello may carry, in bytes.
	MaxAppIDLen = 256
	maxPathLen  = 4096

	helloFixed   = 26
	welcomeFixed = 14
	rejectFixed  = 6
)

// Hello flags.
const (
	// helloCanReceiveFD: the client can receive a descriptor with SCM_RIGHTS.
	helloCanReceiveFD uint32 = 0x1
)

// Welcome flags: exactly one is set.
const (
	welcomeFD   uint16 = 0x1 // the segment descriptor is attached with SCM_RIGHTS
	welcomePath uint16 = 0x2 // the client opens the file at Path
)

// hello is the client's first message.
type hello struct {
	minVersion, maxVersion uint16
	flags                  uint32
	requestRingSize        uint32
	responseRingSize       uint32
	pid                    uint32
	appID                  string
}

// welcome is the server's reply to an acceptable hello.
type welcome struct {
	version     uint16
	flags       uint16
	segmentSize uint64
	path        string
}

// reject is the server's reply to a hello it refuses.
type reject struct {
	code    uint32 // a gRPC status code, never OK
	message string
}

// HandshakeError reports a handshake message that breaks SPEC.md §8.
type HandshakeError struct {
	Message string // "hello", "welcome", ...
	Field   string
	Reason  string
}

func (e *HandshakeError) Error() string {
	return "shm: bad " + e.Message + " " + e.Field + ": " + e.Reason
}

func hsErr(msg, field, format string, args ...any) error {
	return &HandshakeError{Message: msg, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func appendMsgHeader(dst []byte, typ byte, bodyLen int) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(1+bodyLen))
	return append(dst, typ)
}

func (h hello) encode() []byte {
	b := appendMsgHeader(make([]byte, 0, 5+helloFixed+len(h.appID)), msgHello, helloFixed+len(h.appID))
	b = append(b, helloMagic...)
	b = binary.LittleEndian.AppendUint16(b, h.minVersion)
	b = binary.LittleEndian.AppendUint16(b, h.maxVersion)
	b = binary.LittleEndian.AppendUint32(b, h.flags)
	b = binary.LittleEndian.AppendUint32(b, h.requestRingSize)
	b = binary.LittleEndian.AppendUint32(b, h.responseRingSize)
	b = binary.LittleEndian.AppendUint32(b, h.pid)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.appID)))
	return append(b, h.appID...)
}

func decodeHello(body []byte) (hello, error) {
	var h hello
	if len(body) < helloFixed {
		return h, hsErr("hello", "length", "body of %d bytes is shorter than %d", len(body), helloFixed)
	}
	if string(body[:4]) != helloMagic {
		return h, hsErr("hello", "magic", "got %q, want %q", body[:4], helloMagic)
	}
	le := binary.LittleEndian
	h.minVersion = le.Uint16(body[4:])
	h.maxVersion = le.Uint16(body[6:])
	h.flags = le.Uint32(body[8:])
	h.requestRingSize = le.Uint32(body[12:])
	h.responseRingSize = le.Uint32(body[16:])
	h.pid = le.Uint32(body[20:])
	n := int(le.Uint16(body[24:]))
	switch {
	case h.minVersion == 0 || h.minVersion > h.maxVersion:
		return h, hsErr("hello", "version", "range [%d, %d] is empty or starts at 0", h.minVersion, h.maxVersion)
	case h.flags&^helloCanReceiveFD != 0:
		return h, hsErr("hello", "flags", "unknown bits 0x%08x", h.flags&^helloCanReceiveFD)
	case n > MaxAppIDLen:
		return h, hsErr("hello", "app_id", "%d bytes, at most %d allowed", n, MaxAppIDLen)
	case len(body) != helloFixed+n:
		return h, hsErr("hello", "length", "body of %d bytes, want %d for an app id of %d bytes", len(body), helloFixed+n, n)
	}
	h.appID = string(body[helloFixed:])
	if !utf8.ValidString(h.appID) {
		return h, hsErr("hello", "app_id", "%q is not valid UTF-8", h.appID)
	}
	return h, nil
}

func (w welcome) encode() []byte {
	b := appendMsgHeader(make([]byte, 0, 5+welcomeFixed+len(w.path)), msgWelcome, welcomeFixed+len(w.path))
	b = binary.LittleEndian.AppendUint16(b, w.version)
	b = binary.LittleEndian.AppendUint16(b, w.flags)
	b = binary.LittleEndian.AppendUint64(b, w.segmentSize)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(w.path)))
	return append(b, w.path...)
}

func decodeWelcome(body []byte) (welcome, error) {
	var w welcome
	if len(body) < welcomeFixed {
		return w, hsErr("welcome", "length", "body of %d bytes is shorter than %d", len(body), welcomeFixed)
	}
	le := binary.LittleEndian
	w.version = le.Uint16(body[0:])
	w.flags = le.Uint16(body[2:])
	w.segmentSize = le.Uint64(body[4:])
	n := int(le.Uint16(body[12:]))
	if len(body) != welcomeFixed+n {
		return w, hsErr("welcome", "length", "body of %d bytes, want %d for a path of %d bytes", len(body), welcomeFixed+n, n)
	}
	w.path = string(body[welcomeFixed:])
	switch {
	case w.version == 0:
		return w, hsErr("welcome", "version", "0 is not a version")
	case w.flags != welcomeFD && w.flags != welcomePath:
		return w, hsErr("welcome", "flags", "0x%04x, want exactly one of FD (0x1) or PATH (0x2)", w.flags)
	case w.flags == welcomeFD && n != 0:
		return w, hsErr("welcome", "path", "FD mode carries a path of %d bytes, want none", n)
	case w.flags == welcomePath && (n == 0 || n > maxPathLen || !strings.HasPrefix(w.path, "/") || strings.IndexByte(w.path, 0) >= 0):
		return w, hsErr("welcome", "path", "%q is not an absolute path of at most %d bytes without NUL", w.path, maxPathLen)
	case w.segmentSize < headerSize+2*MinRingSize || w.segmentSize > headerSize+2*MaxRingSize:
		return w, hsErr("welcome", "segment_size", "%d is outside [%d, %d]", w.segmentSize, headerSize+2*MinRingSize, headerSize+2*MaxRingSize)
	}
	return w, nil
}

func (r reject) encode() []byte {
	b := appendMsgHeader(make([]byte, 0, 5+rejectFixed+len(r.message)), msgReject, rejectFixed+len(r.message))
	b = binary.LittleEndian.AppendUint32(b, r.code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(r.message)))
	return append(b, r.message...)
}

func decodeReject(body []byte) (reject, error) {
	var r reject
	if len(body) < rejectFixed {
		return r, hsErr("reject", "length", "body of %d bytes is shorter than %d", len(body), rejectFixed)
	}
	r.code = binary.LittleEndian.Uint32(body[0:])
	n := int(binary.LittleEndian.Uint16(body[4:]))
	if len(body) != rejectFixed+n {
		return r, hsErr("reject", "length", "body of %d bytes, want %d for a message of %d bytes", len(body), rejectFixed+n, n)
	}
	if r.code == 0 || r.code > 16 {
		return r, hsErr("reject", "code", "%d is not a non-OK gRPC code", r.code)
	}
	r.message = string(body[rejectFixed:])
	return r, nil
}

func encodeReady() []byte { return appendMsgHeader(nil, msgReady, 0) }

// splitMsg splits one complete handshake message (with its length word)
// into type and body.
func splitMsg(b []byte) (typ byte, body []byte, err error) {
	if len(b) < 5 {
		return 0, nil, hsErr("message", "length", "%d bytes, a message has at least 5", len(b))
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxHandshakeMsg {
		return 0, nil, hsErr("message", "length", "%d is outside [1, %d]", n, maxHandshakeMsg)
	}
	if uint64(len(b)-4) != uint64(n) {
		return 0, nil, hsErr("message", "length", "length word %d, %d bytes follow", n, len(b)-4)
	}
	return b[4], b[5:], nil
}

// readMsg reads one handshake message from r.
func readMsg(r io.Reader) (typ byte, body []byte, err error) {
	var lenBuf [4]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return 0, nil, fmt.Errorf("shm: reading handshake message length: %w", err)
	}
	n := binary.LittleEndian.Uint32(lenBuf[:])
	if n == 0 || n > maxHandshakeMsg {
		return 0, nil, hsErr("message", "length", "%d is outside [1, %d]", n, maxHandshakeMsg)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("shm: reading handshake message of %d bytes: %w", n, err)
	}
	return buf[0], buf[1:], nil
}
