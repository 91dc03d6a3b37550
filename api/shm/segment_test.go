package shm

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	mem, want := testSegment(t, 8<<10, 64<<10)
	got, err := readHeader(mem, WireVersion)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("readHeader = %+v, want %+v", got, want)
	}
	if got.maxFrame != 2<<10 {
		t.Errorf("max_frame = %d, want a quarter of the smaller ring (2048)", got.maxFrame)
	}
	if string(mem[:8]) != "OUTRIGSM" || binary.LittleEndian.Uint64(mem[offSegmentSize:]) != 4096+8<<10+64<<10 {
		t.Errorf("magic/segment size not at the offsets SPEC.md gives")
	}
}

func TestReadHeaderRejects(t *testing.T) {
	le := binary.LittleEndian
	tests := []struct {
		field  string
		mutate func(mem []byte)
	}{
		{"magic", func(m []byte) { m[0] = 'X' }},
		{"version", func(m []byte) { le.PutUint16(m[offVersion:], 2) }},
		{"version", func(m []byte) { le.PutUint16(m[offVersion+2:], 1) }},
		{"header_size", func(m []byte) { le.PutUint32(m[offHeaderSize:], 8192) }},
		{"segment_size", func(m []byte) { le.PutUint64(m[offSegmentSize:], 1<<40) }},
		{"flags", func(m []byte) { le.PutUint32(m[offFlags:], 1) }},
		{"request_ring_size", func(m []byte) { le.PutUint64(m[offReqSize:], 6000) }},
		{"response_ring_size", func(m []byte) { le.PutUint64(m[offRespSize:], 1024) }},
		{"request_ring_offset", func(m []byte) { le.PutUint64(m[offReqOffset:], 0) }},
		{"response_ring_offset", func(m []byte) { le.PutUint64(m[offRespOffset:], 4096) }},
		{"max_frame", func(m []byte) { le.PutUint32(m[offMaxFrame:], 4097) }},
		{"max_frame", func(m []byte) { le.PutUint32(m[offMaxFrame:], 16) }},
		{"max_frame", func(m []byte) { le.PutUint32(m[offMaxFrame:], 8192) }},
		{"max_message", func(m []byte) { le.PutUint32(m[offMaxMessage:], 0) }},
		{"server_state", func(m []byte) { le.PutUint32(m[offServerState:], stateClosed) }},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			mem, _ := testSegment(t, MinRingSize, MinRingSize)
			tt.mutate(mem)
			_, err := readHeader(mem, WireVersion)
			var he *HeaderError
			if !errors.As(err, &he) || he.Field != tt.field {
				t.Fatalf("err = %v, want a HeaderError on %s", err, tt.field)
			}
		})
	}
}

func TestRingSizeFor(t *testing.T) {
	tests := []struct {
		req       uint32
		def, max  uint64
		wantBytes uint64
	}{
		{0, DefaultRingSize, 1 << 24, DefaultRingSize},
		{1, DefaultRingSize, 1 << 24, MinRingSize},
		{5000, DefaultRingSize, 1 << 24, 8192},
		{1 << 20, DefaultRingSize, 1 << 24, 1 << 20},
		{1<<31 + 1, DefaultRingSize, 1 << 24, 1 << 24},
	}
	for _, tt := range tests {
		if got := ringSizeFor(tt.req, tt.def, tt.max); got != tt.wantBytes {
			t.Errorf("ringSizeFor(%d) = %d, want %d", tt.req, got, tt.wantBytes)
		}
	}
}
