package shm

import (
	"fmt"
	"sync/atomic"
)

// ringCtl addresses one ring of a mapped segment: its data area and the
// control words of both sides (SPEC.md §3.3, §4).
type ringCtl struct {
	data           []byte
	size           uint64
	mask           uint64
	maxFrame       uint32
	tail           *uint64 // producer position, written by the producer only
	producerParked *uint32 // set by the producer before it sleeps for space
	head           *uint64 // consumer position, written by the consumer only
	consumerParked *uint32 // set by the consumer before it sleeps for data
}

// ringOffsets names the control words of one ring in the segment header.
type ringOffsets struct {
	tail, producerParked, head, consumerParked int
}

var (
	requestRingOffsets  = ringOffsets{offReqTail, offReqProducerParked, offReqHead, offReqConsumerParked}
	responseRingOffsets = ringOffsets{offRespTail, offRespProducerParked, offRespHead, offRespConsumerParked}
)

func newRingCtl(mem []byte, dataOff, size uint64, offs ringOffsets, maxFrame uint32) ringCtl {
	return ringCtl{
		data:           mem[dataOff : dataOff+size : dataOff+size],
		size:           size,
		mask:           size - 1,
		maxFrame:       maxFrame,
		tail:           word64(mem, offs.tail),
		producerParked: word32(mem, offs.producerParked),
		head:           word64(mem, offs.head),
		consumerParked: word32(mem, offs.consumerParked),
	}
}

// producer is the writing side of a ring. It is not safe for concurrent use:
// the owner serialises calls (SPEC.md: one producer per ring).
type producer struct {
	ringCtl
	pos      uint64 // our tail; the shared tail equals it after each put
	headSeen uint64 // last consumer head read
}

func newProducer(c ringCtl) *producer {
	t := atomic.LoadUint64(c.tail)
	return &producer{ringCtl: c, pos: t, headSeen: atomic.LoadUint64(c.head)}
}

// footprint is the number of ring bytes writing a frame of length bytes at
// the current position consumes, including a PAD frame when the frame does
// not fit before the ring end.
func (p *producer) footprint(length uint32) uint64 {
	n := alignFrame(uint64(length))
	if toEnd := p.size - p.pos&p.mask; n > toEnd {
		return toEnd + n
	}
	return n
}

// fits reports whether need bytes are free, reading the consumer head again
// when the cached value says no.
func (p *producer) fits(need uint64) bool {
	if p.size-(p.pos-p.headSeen) >= need {
		return true
	}
	p.headSeen = atomic.LoadUint64(p.head)
	return p.size-(p.pos-p.headSeen) >= need
}

// tryPut writes one frame (h.Length is set from payload) and publishes it.
// It returns false, writing nothing, when the ring lacks space. The frame
// must satisfy FrameHeaderSize+len(payload) <= maxFrame.
func (p *producer) tryPut(h FrameHeader, payload []byte) bool {
	h.Length = uint32(FrameHeaderSize + len(payload))
	need := p.footprint(h.Length)
	if !p.fits(need) {
		return false
	}
	idx := p.pos & p.mask
	if toEnd := p.size - idx; alignFrame(uint64(h.Length)) > toEnd {
		putPadHeader(p.data[idx:], uint32(toEnd))
		idx = 0
	}
	b := p.data[idx : idx+alignFrame(uint64(h.Length))]
	putFrameHeader(b, h)
	n := copy(b[FrameHeaderSize:], payload)
	clear(b[FrameHeaderSize+n:])
	p.pos += need
	// Release: the frame bytes above become visible before the new tail.
	atomic.StoreUint64(p.tail, p.pos)
	return true
}

// takeConsumerParked must run after a publish. It reports whether the
// consumer was parked, clearing its flag; the caller then rings DATA. The
// sequentially consistent store of tail in tryPut and the load here give the
// store→load ordering of SPEC.md §6.
func (p *producer) takeConsumerParked() bool {
	return atomic.LoadUint32(p.consumerParked) == 1 && atomic.CompareAndSwapUint32(p.consumerParked, 1, 0)
}

// park announces that the producer is about to sleep for space. After it,
// the caller must call fits again before sleeping (SPEC.md §6).
func (p *producer) park() { atomic.StoreUint32(p.producerParked, 1) }

// unpark clears the producer's own flag after waking for any reason.
func (p *producer) unpark() { atomic.CompareAndSwapUint32(p.producerParked, 1, 0) }

// consumer is the reading side of a ring; like producer it has one user.
type consumer struct {
	ringCtl
	pos       uint64 // our head, ahead of the shared head until release
	published uint64 // head last stored to shared memory
	tailSeen  uint64 // last producer tail read
}

func newConsumer(c ringCtl) *consumer {
	h := atomic.LoadUint64(c.head)
	return &consumer{ringCtl: c, pos: h, published: h, tailSeen: atomic.LoadUint64(c.tail)}
}

// RingError reports ring control words that break SPEC.md §4.
type RingError struct{ Reason string }

func (e *RingError) Error() string { return "shm: bad ring state: " + e.Reason }

// next decodes the next frame, skipping PAD frames. The payload aliases the
// ring and stays valid until release. ok is false when the ring is empty.
func (c *consumer) next() (h FrameHeader, payload []byte, ok bool, err error) {
	for {
		if c.pos == c.tailSeen {
			c.tailSeen = atomic.LoadUint64(c.tail) // acquire: frame bytes below are visible
			if c.pos == c.tailSeen {
				return h, nil, false, nil
			}
		}
		used := c.tailSeen - c.pos
		if used > c.size || used%frameAlign != 0 {
			return h, nil, false, &RingError{fmt.Sprintf("tail %d and head %d are %d bytes apart in a ring of %d", c.tailSeen, c.pos, used, c.size)}
		}
		idx := c.pos & c.mask
		avail := min(used, c.size-idx)
		h, payload, n, err := DecodeFrame(c.data[idx:idx+avail], c.maxFrame)
		if err != nil {
			return h, nil, false, fmt.Errorf("at ring position %d: %w", c.pos, err)
		}
		if h.Flags == FlagPad {
			if idx+uint64(n) != c.size {
				return h, nil, false, &RingError{fmt.Sprintf("PAD frame at index %d of length %d does not end at the ring end %d", idx, n, c.size)}
			}
			c.pos += uint64(n)
			continue
		}
		c.pos += uint64(n)
		return h, payload, true, nil
	}
}

// release publishes the consumed position, freeing the space of every frame
// returned by next so far.
func (c *consumer) release() {
	if c.pos != c.published {
		// Release: our reads of the frames happen before the producer may reuse them.
		atomic.StoreUint64(c.head, c.pos)
		c.published = c.pos
	}
}

// pending reports whether unread frames exist (acquire load of tail).
func (c *consumer) pending() bool {
	if c.pos != c.tailSeen {
		return true
	}
	c.tailSeen = atomic.LoadUint64(c.tail)
	return c.pos != c.tailSeen
}

// takeProducerParked must run after release; it reports whether the producer
// was parked waiting for space, clearing its flag; the caller then rings SPACE.
func (c *consumer) takeProducerParked() bool {
	return atomic.LoadUint32(c.producerParked) == 1 && atomic.CompareAndSwapUint32(c.producerParked, 1, 0)
}

// park announces that the consumer is about to sleep for data; the caller
// must call pending again before sleeping.
func (c *consumer) park() { atomic.StoreUint32(c.consumerParked, 1) }

// unpark clears the consumer's own flag after waking for any reason.
func (c *consumer) unpark() { atomic.CompareAndSwapUint32(c.consumerParked, 1, 0) }
