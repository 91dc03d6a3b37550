package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		h       FrameHeader
		payload []byte
	}{
		{"empty request", FrameHeader{Method: MethodGetState, Flags: FlagEnd, Stream: 1}, nil},
		{"aligned payload", FrameHeader{Method: MethodSaveState, Flags: FlagEnd, Stream: 7, TimeoutMicros: 1500}, bytes.Repeat([]byte{0xab}, 64)},
		{"unaligned payload", FrameHeader{Method: MethodPublish, Stream: 1 << 40}, []byte("hello, sidecar")},
		{"error response", FrameHeader{Method: MethodInvoke, Flags: FlagError | FlagEnd, Stream: 3}, []byte{0x08, 0x05}},
		{"cancel", FrameHeader{Method: MethodInvoke, Flags: FlagCancel | FlagEnd, Stream: 9}, nil},
		{"max stream and method", FrameHeader{Method: 0xffff, Flags: FlagEnd, Stream: ^uint64(0), TimeoutMicros: ^uint32(0)}, []byte{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := AppendFrame(nil, tt.h, tt.payload)
			if len(b)%8 != 0 {
				t.Fatalf("encoded frame is %d bytes, not a multiple of 8", len(b))
			}
			h, p, n, err := DecodeFrame(b, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.h
			want.Length = uint32(FrameHeaderSize + len(tt.payload))
			if h != want {
				t.Errorf("header = %+v, want %+v", h, want)
			}
			if !bytes.Equal(p, tt.payload) {
				t.Errorf("payload = %x, want %x", p, tt.payload)
			}
			if n != len(b) {
				t.Errorf("size = %d, want %d", n, len(b))
			}
		})
	}
}

func TestFrameEncodingIsLittleEndian(t *testing.T) {
	b := AppendFrame(nil, FrameHeader{Method: 0x0102, Flags: FlagEnd, Stream: 0x0807060504030201, TimeoutMicros: 0x0d0c0b0a}, []byte{0xee})
	want := []byte{
		25, 0, 0, 0, // length
		0x02, 0x01, // method
		0x01, 0x00, // flags
		0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, // stream
		0x0a, 0x0b, 0x0c, 0x0d, // timeout
		0, 0, 0, 0, // reserved
		0xee, 0, 0, 0, 0, 0, 0, 0, // payload + padding
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n%x\nwant\n%x", b, want)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	valid := AppendFrame(nil, FrameHeader{Method: 2, Flags: FlagEnd, Stream: 1}, []byte("payload!"))
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), valid...)) }
	pad := func(length uint32, method uint16, flags Flags, avail int) []byte {
		b := make([]byte, avail)
		binary.LittleEndian.PutUint32(b, length)
		binary.LittleEndian.PutUint16(b[4:], method)
		binary.LittleEndian.PutUint16(b[6:], uint16(flags))
		return b
	}
	tests := []struct {
		name      string
		b         []byte
		maxFrame  uint32
		wantField string
	}{
		{"too short", valid[:7], 1024, "length"},
		{"unknown flag", mutate(func(b []byte) []byte { b[7] = 0x80; return b }), 1024, "flags"},
		{"length below header", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b, 23); return b }), 1024, "length"},
		{"length above max frame", valid, 24, "length"},
		{"length beyond available", valid[:24], 1024, "length"},
		{"reserved set", mutate(func(b []byte) []byte { b[20] = 1; return b }), 1024, "reserved"},
		{"method 0", mutate(func(b []byte) []byte { b[4] = 0; return b }), 1024, "method"},
		{"stream 0", mutate(func(b []byte) []byte { clear(b[8:16]); return b }), 1024, "stream"},
		{"cancel without end", AppendFrame(nil, FrameHeader{Method: 1, Flags: FlagCancel, Stream: 1}, nil), 1024, "flags"},
		{"cancel with payload", AppendFrame(nil, FrameHeader{Method: 1, Flags: FlagCancel | FlagEnd, Stream: 1}, []byte{1}), 1024, "length"},
		{"pad with method", pad(16, 1, FlagPad, 16), 1024, "method"},
		{"pad with end", pad(16, 0, FlagPad|FlagEnd, 16), 1024, "flags"},
		{"pad unaligned", pad(12, 0, FlagPad, 16), 1024, "length"},
		{"pad beyond available", pad(24, 0, FlagPad, 16), 1024, "length"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, _, err := DecodeFrame(tt.b, tt.maxFrame)
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FrameError", err)
			}
			if fe.Field != tt.wantField {
				t.Errorf("field = %q (%v), want %q", fe.Field, err, tt.wantField)
			}
		})
	}
}

func TestDecodePadFrame(t *testing.T) {
	b := make([]byte, 16)
	putPadHeader(b, 16)
	h, p, n, err := DecodeFrame(b, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if h.Flags != FlagPad || n != 16 || p != nil {
		t.Fatalf("got %+v payload %v size %d, want a 16-byte PAD", h, p, n)
	}
}

func TestFlagsString(t *testing.T) {
	for f, want := range map[Flags]string{0: "0", FlagEnd | FlagError: "END|ERROR", FlagPad | 0x100: "PAD|0x0100"} {
		if got := f.String(); got != want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint16(f), got, want)
		}
	}
}

// The example bytes in SPEC.md Appendix A are what this implementation writes.
func TestSpecAppendixFrame(t *testing.T) {
	mem, l := testSegment(t, MinRingSize, MinRingSize)
	rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
	p := newProducer(rc)
	if !p.tryPut(FrameHeader{Method: MethodGetState, Flags: FlagEnd, Stream: 1, TimeoutMicros: 5000}, []byte{0x0a, 0x01, 0x6b}) {
		t.Fatal("tryPut failed")
	}
	want := []byte{
		0x1b, 0, 0, 0, 0x02, 0, 0x01, 0,
		0x01, 0, 0, 0, 0, 0, 0, 0,
		0x88, 0x13, 0, 0, 0, 0, 0, 0,
		0x0a, 0x01, 0x6b, 0, 0, 0, 0, 0,
	}
	if !bytes.Equal(rc.data[:32], want) {
		t.Fatalf("ring bytes\n%x\nwant (SPEC.md appendix A)\n%x", rc.data[:32], want)
	}
	if got := binary.LittleEndian.Uint64(mem[offReqTail:]); got != 32 {
		t.Fatalf("tail = %d, want 32", got)
	}
}
