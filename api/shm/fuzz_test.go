package shm

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzDecodeFrame: DecodeFrame never panics, never claims more bytes than it
// was given, and what it accepts re-encodes to the same bytes.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameHeader{Method: MethodGetState, Flags: FlagEnd, Stream: 1}, []byte("key")), uint32(1024))
	f.Add(AppendFrame(nil, FrameHeader{Method: MethodInvoke, Flags: FlagError | FlagEnd, Stream: 2, TimeoutMicros: 5}, []byte{8, 14}), uint32(64))
	f.Add(AppendFrame(nil, FrameHeader{Method: 1, Flags: FlagCancel | FlagEnd, Stream: 3}, nil), uint32(32))
	pad := make([]byte, 24)
	putPadHeader(pad, 24)
	f.Add(pad, uint32(64))
	f.Fuzz(func(t *testing.T, b []byte, maxFrame uint32) {
		h, p, n, err := DecodeFrame(b, maxFrame)
		if err != nil {
			return
		}
		if n <= 0 || n > len(b) || n%8 != 0 {
			t.Fatalf("size %d for %d input bytes", n, len(b))
		}
		if h.Flags == FlagPad {
			return
		}
		if h.Length > maxFrame {
			t.Fatalf("accepted length %d above max frame %d", h.Length, maxFrame)
		}
		re := AppendFrame(nil, h, p)
		if !bytes.Equal(re[:h.Length], b[:h.Length]) {
			t.Fatalf("re-encoded %x, input %x", re[:h.Length], b[:h.Length])
		}
	})
}

// FuzzRingConsume: a consumer reading a ring whose bytes and producer
// position are arbitrary (a broken or hostile peer) returns frames inside
// the ring or an error, and never panics or loops forever.
func FuzzRingConsume(f *testing.F) {
	ok := AppendFrame(nil, FrameHeader{Method: 2, Flags: FlagEnd, Stream: 1}, []byte("abc"))
	f.Add(ok, uint64(len(ok)), uint64(0))
	f.Add(ok, uint64(MinRingSize+8), uint64(MinRingSize-8))
	f.Fuzz(func(t *testing.T, data []byte, tail, head uint64) {
		mem, l := testSegment(t, MinRingSize, MinRingSize)
		rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
		copy(rc.data, data)
		// Bytes beyond the ring size wrap, as a hostile peer could write them.
		if len(data) > MinRingSize {
			copy(rc.data, data[MinRingSize:])
		}
		head &^= 7
		binary.LittleEndian.PutUint64(mem[offReqHead:], head)
		binary.LittleEndian.PutUint64(mem[offReqTail:], tail)
		c := newConsumer(rc)
		for i := 0; i < MinRingSize/8+1; i++ {
			h, p, more, err := c.next()
			if err != nil || !more {
				return
			}
			if len(p) != int(h.Length)-FrameHeaderSize || c.pos-head > MinRingSize {
				t.Fatalf("frame %+v with %d payload bytes, consumer %d bytes past head", h, len(p), c.pos-head)
			}
		}
		t.Fatalf("consumer returned more frames than fit in the ring")
	})
}

// FuzzDecodeHandshake: the handshake decoders never panic and what they
// accept re-encodes to the same bytes.
func FuzzDecodeHandshake(f *testing.F) {
	f.Add(hello{minVersion: 1, maxVersion: 1, flags: 1, appID: "checkout"}.encode())
	f.Add(welcome{version: 1, flags: welcomePath, segmentSize: 4096 + 2*MinRingSize, path: "/dev/shm/outrig-00"}.encode())
	f.Add(welcome{version: 1, flags: welcomeFD, segmentSize: 4096 + 2*MinRingSize}.encode())
	f.Add(reject{code: 14, message: "no"}.encode())
	f.Add(encodeReady())
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, body, err := splitMsg(b)
		if err != nil {
			return
		}
		var re []byte
		switch typ {
		case msgHello:
			h, err := decodeHello(body)
			if err != nil {
				return
			}
			re = h.encode()
		case msgWelcome:
			w, err := decodeWelcome(body)
			if err != nil {
				return
			}
			re = w.encode()
		case msgReject:
			r, err := decodeReject(body)
			if err != nil {
				return
			}
			re = r.encode()
		default:
			return
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoded %x, input %x", re, b)
		}
	})
}

// FuzzReadHeader: a hostile segment header is rejected or yields a layout
// whose rings lie inside the segment.
func FuzzReadHeader(f *testing.F) {
	mem, _ := testSegment(f, MinRingSize, MinRingSize)
	f.Add(append([]byte(nil), mem[:128]...))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		mem, _ := testSegment(t, MinRingSize, MinRingSize)
		copy(mem[:128], hdr)
		l, err := readHeader(mem, WireVersion)
		if err != nil {
			return
		}
		if l.respOffset+l.respSize > uint64(len(mem)) || l.reqOffset+l.reqSize > l.respOffset || uint64(l.maxFrame) > l.reqSize/2 {
			t.Fatalf("accepted layout %+v for a %d-byte segment", l, len(mem))
		}
	})
}
