package shm

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// Doorbell bytes sent on the socket after the handshake (SPEC.md §6.3).
const (
	doorbellData  byte = 0x01 // the ring you consume has new frames
	doorbellSpace byte = 0x02 // the ring you produce into has free space
)

// receiver gets the complete messages an endpoint reads. Its methods run on
// the endpoint's reader goroutine, one at a time; they may block only while
// also watching the endpoint's done channel.
type receiver interface {
	// onMessage gets a complete message; h.Flags has END set and payload is
	// owned by the receiver.
	onMessage(h FrameHeader, payload []byte) error
	// onCancel gets a CANCEL frame (server side only).
	onCancel(h FrameHeader) error
	// onClose runs once, after the segment is unmapped and both endpoint
	// goroutines have exited; err says why the endpoint closed.
	onClose(err *Error)
}

type role int

const (
	roleClient role = iota // produces requests, consumes responses
	roleServer             // produces responses, consumes requests
)

// endpoint is one side of an established connection: the ring it produces
// into, the ring it consumes, the socket, and two goroutines — one reads the
// socket (doorbells and EOF), one drains the consumed ring.
//
// Writers (send, cancelStream) may be called from any goroutine; they are
// serialised by wmu, which also guards the mapping: the segment is unmapped
// only under wmu and after both goroutines have exited.
type endpoint struct {
	conn       *net.UnixConn
	recv       receiver
	role       role
	maxFrame   uint32
	maxMessage uint32
	maxPartial int
	spin       time.Duration
	// spinGate, when set, must return true for the reader to spin before
	// parking (the client spins only while calls are in flight).
	spinGate func() bool

	wmu      sync.Mutex
	mem      []byte // nil once released
	tx       *producer
	stateOff int // our liveness word in the header

	rx      *consumer              // reader goroutine only
	partial map[uint64]*partialMsg // reader goroutine only

	dataWake  chan struct{} // socket goroutine → reader: DATA doorbell
	spaceWake chan struct{} // socket goroutine → writer: SPACE doorbell
	done      chan struct{}
	failOnce  sync.Once
	err       *Error // set before done is closed
	live      atomic.Int32

	bellData, bellSpace [1]byte // read-only after construction
}

type partialMsg struct {
	h   FrameHeader
	buf []byte
}

func newEndpoint(conn *net.UnixConn, mem []byte, l layout, r role, recv receiver, spin time.Duration, maxPartial int) *endpoint {
	req := newRingCtl(mem, l.reqOffset, l.reqSize, requestRingOffsets, l.maxFrame)
	resp := newRingCtl(mem, l.respOffset, l.respSize, responseRingOffsets, l.maxFrame)
	e := &endpoint{
		conn:       conn,
		recv:       recv,
		role:       r,
		maxFrame:   l.maxFrame,
		maxMessage: l.maxMessage,
		maxPartial: maxPartial,
		spin:       spin,
		mem:        mem,
		partial:    make(map[uint64]*partialMsg),
		dataWake:   make(chan struct{}, 1),
		spaceWake:  make(chan struct{}, 1),
		done:       make(chan struct{}),
		bellData:   [1]byte{doorbellData},
		bellSpace:  [1]byte{doorbellSpace},
	}
	if r == roleClient {
		e.tx, e.rx, e.stateOff = newProducer(req), newConsumer(resp), offClientState
	} else {
		e.tx, e.rx, e.stateOff = newProducer(resp), newConsumer(req), offServerState
	}
	return e
}

// start launches the two goroutines.
func (e *endpoint) start() {
	e.live.Store(2)
	go e.sockLoop()
	go e.readLoop()
}

// fail closes the endpoint with err (the first error wins) and closes the
// socket, which the peer sees as our death. Resources are released once
// both goroutines have exited.
func (e *endpoint) fail(err *Error) {
	e.failOnce.Do(func() {
		e.err = err
		close(e.done)
		_ = e.conn.Close()
	})
}

// closedErr is the error of every operation after the endpoint closed.
func (e *endpoint) closedErr() *Error {
	<-e.done
	return e.err
}

func (e *endpoint) exit() {
	if e.live.Add(-1) == 0 {
		e.release()
	}
}

func (e *endpoint) release() {
	e.wmu.Lock()
	if e.mem != nil {
		word := word32(e.mem, e.stateOff)
		atomic.StoreUint32(word, stateClosed)
		_ = unmap(e.mem)
		e.mem, e.tx, e.rx = nil, nil, nil
	}
	e.wmu.Unlock()
	e.partial = nil
	e.recv.onClose(e.err)
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (e *endpoint) ring(b byte) {
	bell := e.bellData[:]
	if b == doorbellSpace {
		bell = e.bellSpace[:]
	}
	// An error means the peer is gone; sockLoop reports it.
	_, _ = e.conn.Write(bell)
}

// sockLoop reads doorbells until the socket fails; EOF means the peer died
// or closed (SPEC.md §9).
func (e *endpoint) sockLoop() {
	defer e.exit()
	var buf [64]byte
	for {
		n, err := e.conn.Read(buf[:])
		for _, b := range buf[:n] {
			switch b {
			case doorbellData:
				notify(e.dataWake)
			case doorbellSpace:
				notify(e.spaceWake)
			default:
				e.fail(newError(codes.Unavailable, nil, "protocol error: unknown doorbell byte 0x%02x", b))
				return
			}
		}
		if err != nil {
			e.fail(newError(codes.Unavailable, err, "peer connection lost"))
			return
		}
	}
}

// readLoop drains the consumed ring, spins briefly when it runs dry, then
// parks until a DATA doorbell (SPEC.md §6).
func (e *endpoint) readLoop() {
	defer e.exit()
	for {
		select {
		case <-e.done:
			return
		default:
		}
		progress, err := e.drain()
		if err != nil {
			e.fail(newError(codes.Unavailable, err, "protocol error from peer"))
			return
		}
		if progress || e.idleSpin() {
			continue
		}
		e.rx.park()
		if e.rx.pending() {
			e.rx.unpark()
			continue
		}
		select {
		case <-e.dataWake:
		case <-e.done:
			return
		}
		e.rx.unpark()
	}
}

// idleSpin polls the consumed ring for up to e.spin; it reports whether
// frames arrived.
func (e *endpoint) idleSpin() bool {
	if e.spin <= 0 || (e.spinGate != nil && !e.spinGate()) {
		return false
	}
	start := time.Now()
	for i := 1; ; i++ {
		runtime.Gosched()
		if e.rx.pending() {
			return true
		}
		if i%8 == 0 && time.Since(start) > e.spin {
			return false
		}
	}
}

// drain delivers every available frame and frees their space, releasing
// every quarter ring so a waiting producer can proceed during long batches.
func (e *endpoint) drain() (progress bool, err error) {
	start, since := e.rx.pos, e.rx.pos
	for {
		h, p, ok, err := e.rx.next()
		if err != nil {
			return true, err
		}
		if !ok {
			break
		}
		if err := e.deliver(h, p); err != nil {
			return true, err
		}
		if e.rx.pos-since >= e.rx.size/4 {
			e.releaseRx()
			since = e.rx.pos
		}
	}
	if e.rx.pos != e.rx.published {
		e.releaseRx()
	}
	return e.rx.pos != start, nil
}

func (e *endpoint) releaseRx() {
	e.rx.release()
	if e.rx.takeProducerParked() {
		e.ring(doorbellSpace)
	}
}

// deliver applies the direction rules and reassembles fragments (SPEC.md §5.3).
func (e *endpoint) deliver(h FrameHeader, p []byte) error {
	switch {
	case h.Flags&FlagCancel != 0 && e.role == roleClient:
		return frameErr("flags", "CANCEL in the response ring (stream %d)", h.Stream)
	case h.Flags&FlagError != 0 && e.role == roleServer:
		return frameErr("flags", "ERROR in the request ring (stream %d)", h.Stream)
	case h.TimeoutMicros != 0 && e.role == roleClient:
		return frameErr("timeout", "%d in the response ring (stream %d), want 0", h.TimeoutMicros, h.Stream)
	}
	if h.Flags&FlagCancel != 0 {
		delete(e.partial, h.Stream)
		return e.recv.onCancel(h)
	}
	pm := e.partial[h.Stream]
	if pm == nil {
		if uint64(len(p)) > uint64(e.maxMessage) {
			return frameErr("length", "message of stream %d exceeds max_message %d", h.Stream, e.maxMessage)
		}
		if h.Flags&FlagEnd != 0 {
			return e.recv.onMessage(h, append([]byte(nil), p...))
		}
		if len(e.partial) >= e.maxPartial {
			return frameErr("stream", "more than %d messages are being reassembled", e.maxPartial)
		}
		e.partial[h.Stream] = &partialMsg{h: h, buf: append([]byte(nil), p...)}
		return nil
	}
	if h.Method != pm.h.Method || (h.Flags^pm.h.Flags)&FlagError != 0 {
		return frameErr("method", "fragment of stream %d has method %d flags %s, earlier fragments %d %s", h.Stream, h.Method, h.Flags, pm.h.Method, pm.h.Flags)
	}
	if uint64(len(pm.buf))+uint64(len(p)) > uint64(e.maxMessage) {
		return frameErr("length", "message of stream %d exceeds max_message %d", h.Stream, e.maxMessage)
	}
	pm.buf = append(pm.buf, p...)
	if h.Flags&FlagEnd == 0 {
		return nil
	}
	delete(e.partial, h.Stream)
	first := pm.h
	first.Flags |= FlagEnd
	return e.recv.onMessage(first, pm.buf)
}

// send writes one message as one or more frames (SPEC.md §5.3), waiting for
// space when the ring is full. ctx (nil = never cancelled) bounds only the
// waiting: if it ends before the first fragment is published nothing was
// sent and its error is returned; if it ends later, the rest of the message
// is replaced by a CANCEL frame written in the background and its error is
// returned (cancelOnAbort; otherwise the message is completed).
func (e *endpoint) send(ctx context.Context, h FrameHeader, payload []byte, cancelOnAbort bool) error {
	chunk := int(e.maxFrame) - FrameHeaderSize
	e.wmu.Lock()
	if e.mem == nil {
		e.wmu.Unlock()
		return e.closedErr()
	}
	sent := false
	for off := 0; ; {
		n := min(chunk, len(payload)-off)
		fh := h
		if off+n == len(payload) {
			fh.Flags |= FlagEnd
		}
		if e.tx.tryPut(fh, payload[off:off+n]) {
			sent = true
			off += n
			if off == len(payload) {
				break
			}
			continue
		}
		if sent && e.tx.takeConsumerParked() {
			e.ring(doorbellData) // let the consumer free the space we wait for
		}
		wctx := ctx
		if sent && !cancelOnAbort {
			wctx = nil
		}
		if err := e.waitSpace(wctx, e.tx.footprint(uint32(FrameHeaderSize+n))); err != nil {
			if sent && wctx != nil && wctx.Err() != nil {
				// Hand our hold of wmu to a goroutine that ends the stream.
				go e.finishCancel(FrameHeader{Method: h.Method, Flags: FlagCancel | FlagEnd, Stream: h.Stream})
				return err
			}
			e.wmu.Unlock()
			return err
		}
	}
	wake := e.tx.takeConsumerParked()
	e.wmu.Unlock()
	if wake {
		e.ring(doorbellData)
	}
	return nil
}

// cancelStream sends a CANCEL frame for a stream without blocking the caller.
func (e *endpoint) cancelStream(method uint16, stream uint64) {
	cf := FrameHeader{Method: method, Flags: FlagCancel | FlagEnd, Stream: stream}
	if !e.wmu.TryLock() {
		go func() {
			e.wmu.Lock()
			e.finishCancel(cf)
		}()
		return
	}
	if e.mem == nil {
		e.wmu.Unlock()
		return
	}
	if e.tx.tryPut(cf, nil) {
		wake := e.tx.takeConsumerParked()
		e.wmu.Unlock()
		if wake {
			e.ring(doorbellData)
		}
		return
	}
	go e.finishCancel(cf)
}

// finishCancel runs with wmu held and writes cf once space allows or the
// endpoint closes; it unlocks wmu.
func (e *endpoint) finishCancel(cf FrameHeader) {
	for e.mem != nil {
		if e.tx.tryPut(cf, nil) {
			wake := e.tx.takeConsumerParked()
			e.wmu.Unlock()
			if wake {
				e.ring(doorbellData)
			}
			return
		}
		if e.waitSpace(nil, e.tx.footprint(FrameHeaderSize)) != nil {
			break
		}
	}
	e.wmu.Unlock()
}

// waitSpace waits, holding wmu, until need bytes are free in the produced
// ring: it spins for e.spin, then parks until a SPACE doorbell (SPEC.md §6.4).
func (e *endpoint) waitSpace(ctx context.Context, need uint64) error {
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	if e.spin > 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if e.tx.fits(need) {
				return nil
			}
			if i%8 == 0 && time.Since(start) > e.spin {
				break
			}
			runtime.Gosched()
		}
	}
	for {
		e.tx.park()
		if e.tx.fits(need) {
			e.tx.unpark()
			return nil
		}
		select {
		case <-e.spaceWake:
		case <-ctxDone:
			e.tx.unpark()
			return ctx.Err()
		case <-e.done:
			return e.err
		}
		e.tx.unpark()
		if e.tx.fits(need) {
			return nil
		}
	}
}
