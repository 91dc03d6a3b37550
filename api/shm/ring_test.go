package shm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"
)

// testSegment builds a segment in 8-byte aligned heap memory (so the race
// detector sees every access) with rings of the given sizes.
func testSegment(t testing.TB, reqSize, respSize uint64) ([]byte, layout) {
	t.Helper()
	l := newLayout(reqSize, respSize, DefaultMaxMessage)
	words := make([]uint64, l.segmentSize/8)
	mem := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), l.segmentSize)
	writeHeader(mem, l, 1)
	return mem, l
}

// noise is random bytes that payloadFor slices from.
var noise = func() []byte {
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, 1<<20)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

// payloadFor is the deterministic payload of frame seq.
func payloadFor(seq uint64, size int) []byte {
	p := make([]byte, 0, size)
	for off := int(seq*7919) % (len(noise) / 2); len(p) < size; off = 0 {
		p = append(p, noise[off:min(len(noise), off+size-len(p))]...)
	}
	if size >= 8 {
		binary.LittleEndian.PutUint64(p, seq)
	}
	return p
}

func TestRingWraparoundRandomSizes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 12; round++ {
		size := uint64(MinRingSize) << r.IntN(5)
		// Positions start just below 2^64 in half the rounds, so that the
		// counters themselves wrap as well as the ring index.
		var start uint64
		if round%2 == 1 {
			start = -uint64(8 * (1 + r.IntN(int(size))))
		}
		mem, l := testSegment(t, size, size)
		*word64(mem, offReqTail), *word64(mem, offReqHead) = start, start
		rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
		p, c := newProducer(rc), newConsumer(rc)
		maxPayload := int(l.maxFrame) - FrameHeaderSize
		const frames = 3000
		sizes := make([]int, frames)
		for i := range sizes {
			sizes[i] = r.IntN(maxPayload + 1)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; i < frames; i++ {
				h := FrameHeader{Method: uint16(1 + i%11), Flags: FlagEnd, Stream: uint64(i + 1)}
				for !p.tryPut(h, payloadFor(uint64(i), sizes[i])) {
					runtime.Gosched()
				}
			}
		}()
		for i := 0; i < frames; {
			h, pl, ok, err := c.next()
			if err != nil {
				t.Fatalf("round %d (ring %d, start %d): frame %d: %v", round, size, start, i, err)
			}
			if !ok {
				c.release()
				runtime.Gosched()
				continue
			}
			if h.Stream != uint64(i+1) || h.Method != uint16(1+i%11) || h.Flags != FlagEnd {
				t.Fatalf("round %d: frame %d header %+v", round, i, h)
			}
			if want := payloadFor(uint64(i), sizes[i]); !bytes.Equal(pl, want) {
				t.Fatalf("round %d: frame %d payload differs (%d bytes, want %d)", round, i, len(pl), len(want))
			}
			if r.IntN(4) == 0 {
				c.release()
			}
			i++
		}
		c.release()
		<-done
		if got := atomic.LoadUint64(rc.head); got != atomic.LoadUint64(rc.tail) {
			t.Fatalf("round %d: head %d != tail %d after draining", round, got, atomic.LoadUint64(rc.tail))
		}
	}
}

func TestRingPadsAtTheEnd(t *testing.T) {
	mem, l := testSegment(t, MinRingSize, MinRingSize)
	rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
	p, c := newProducer(rc), newConsumer(rc)
	// Fill to 16 bytes before the end, then free everything.
	filler := int(l.maxFrame) - FrameHeaderSize
	written := uint64(0)
	for written+alignFrame(uint64(l.maxFrame)) <= MinRingSize-16 {
		if !p.tryPut(FrameHeader{Method: 1, Flags: FlagEnd, Stream: 1}, make([]byte, filler)) {
			t.Fatal("ring full too early")
		}
		written += alignFrame(uint64(l.maxFrame))
	}
	for written < MinRingSize-16 {
		n := int(min(uint64(l.maxFrame), MinRingSize-16-written)) - FrameHeaderSize
		if !p.tryPut(FrameHeader{Method: 1, Flags: FlagEnd, Stream: 1}, make([]byte, n)) {
			t.Fatal("ring full too early")
		}
		written += alignFrame(uint64(FrameHeaderSize + n))
	}
	for {
		_, _, ok, err := c.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
	}
	c.release()
	// A 40-byte frame does not fit in the last 16 bytes: PAD + frame at 0.
	if !p.tryPut(FrameHeader{Method: 2, Flags: FlagEnd, Stream: 5}, make([]byte, 16)) {
		t.Fatal("tryPut failed on an empty ring")
	}
	idx := written & (MinRingSize - 1)
	h, _, _, err := DecodeFrame(rc.data[idx:], l.maxFrame)
	if err != nil || h.Flags != FlagPad || h.Length != 16 {
		t.Fatalf("at index %d: %+v, %v; want a 16-byte PAD", idx, h, err)
	}
	h, _, ok, err := c.next()
	if err != nil || !ok || h.Stream != 5 {
		t.Fatalf("next after PAD = %+v ok=%v err=%v, want stream 5", h, ok, err)
	}
	if c.pos != MinRingSize+40 {
		t.Fatalf("consumer at %d, want %d", c.pos, MinRingSize+40)
	}
}

func TestRingRejectsBadControlWords(t *testing.T) {
	tests := []struct {
		name  string
		setup func(mem []byte, rc ringCtl)
	}{
		{"tail beyond a ring size", func(mem []byte, rc ringCtl) { atomic.StoreUint64(rc.tail, rc.size+8) }},
		{"tail not aligned", func(mem []byte, rc ringCtl) { atomic.StoreUint64(rc.tail, 12) }},
		{"tail behind head", func(mem []byte, rc ringCtl) { atomic.StoreUint64(rc.tail, ^uint64(7)) }},
		{"pad not reaching the end", func(mem []byte, rc ringCtl) {
			putPadHeader(rc.data, 16)
			atomic.StoreUint64(rc.tail, 64)
		}},
		{"garbage frame", func(mem []byte, rc ringCtl) {
			copy(rc.data, bytes.Repeat([]byte{0xff}, 64))
			atomic.StoreUint64(rc.tail, 64)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem, l := testSegment(t, MinRingSize, MinRingSize)
			rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
			c := newConsumer(rc)
			tt.setup(mem, rc)
			_, _, ok, err := c.next()
			var re *RingError
			var fe *FrameError
			if ok || !(errors.As(err, &re) || errors.As(err, &fe)) {
				t.Fatalf("next() ok=%v err=%v, want a ring or frame error", ok, err)
			}
		})
	}
}

func TestParkedFlagsHandshake(t *testing.T) {
	mem, l := testSegment(t, MinRingSize, MinRingSize)
	rc := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
	p, c := newProducer(rc), newConsumer(rc)
	if p.takeConsumerParked() {
		t.Fatal("consumer reported parked before it parked")
	}
	c.park()
	if !p.takeConsumerParked() {
		t.Fatal("parked consumer not reported")
	}
	if p.takeConsumerParked() {
		t.Fatal("one park reported twice: the producer would ring twice")
	}
	p.park()
	if !c.takeProducerParked() || c.takeProducerParked() {
		t.Fatal("producer park must be reported exactly once")
	}
	c.park()
	c.unpark()
	if p.takeConsumerParked() {
		t.Fatal("consumer that unparked itself reported parked")
	}
}
