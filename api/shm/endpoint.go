package shm

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Doorbell bytes sent on the socket after the handshake (SPEC.md §6.1).
const (
	doorbellData  byte = 0x01 // the ring you consume has new frames
	doorbellSpace byte = 0x02 // the ring you produce into has free space
)

// errBusy is returned by deliver to stop a drain when the receiver cannot
// take a message now.
var errBusy = errors.New("shm: no handler slot")

// receiver gets the complete messages an endpoint reads. Its methods run on
// the goroutine doing the reader duties, one at a time, and must not block.
type receiver interface {
	// reserve is called before a frame that completes a message is
	// consumed; false leaves the frame in the ring until kickRead.
	reserve() bool
	// canReserve reports whether reserve would succeed now.
	canReserve() bool
	// onMessage gets a complete message after a successful reserve; h.Flags
	// has END set and payload is owned by the receiver.
	onMessage(h FrameHeader, payload []byte) error
	// onCancel gets a CANCEL frame (server side only).
	onCancel(h FrameHeader) error
	// onClose runs once, after the segment is unmapped; err says why the
	// endpoint closed.
	onClose(err *Error)
}

type role int

const (
	roleClient role = iota // produces requests, consumes responses
	roleServer             // produces responses, consumes requests
)

// endpoint is one side of an established connection: the ring it produces
// into, the ring it consumes and the socket.
//
// Reader duties — draining the consumed ring, spinning, sleeping in a read
// of the socket (doorbells, EOF) — are performed by one goroutine at a time:
// on the server a dedicated loop goroutine; on the client whichever caller
// holds the reader token (leader/follower), so that the goroutine woken by
// the kernel is the one whose reply arrived and no goroutine hand-off sits
// on the critical path.
//
// Writers (send, cancelStream) may be called from any goroutine; they are
// serialised by the writer lock wlock, which a waiting writer gives up when
// its context ends. The segment is unmapped once, by the last reader, under
// wlock.
type endpoint struct {
	conn       *net.UnixConn
	recv       receiver
	role       role
	maxFrame   uint32
	maxMessage uint32
	maxPartial int

	wlock    chan struct{} // writer lock: holding = a value sent
	mem      []byte        // nil once released
	tx       *producer
	stateOff int // our liveness word in the header

	// Reader state: only the goroutine performing the reader duties.
	rx         *consumer
	partial    map[uint64]*partialMsg
	txHead     *uint64 // the consumer position of the ring we produce into
	txHeadSeen uint64
	spin       spinBudget // adaptive (reader.go); spin.most is fixed and read by writers too
	// Lone spin, used instead of spin while alone reports true: on the
	// server (ServerOptions.LoneSpin) that no call is running, on the
	// client (DialOptions.LoneSpin) that one call waits for its reply. Set
	// (setLoneSpin) before the endpoint starts.
	loneSpin spinBudget
	alone    func() bool

	// token, when not nil (client), holds one value while no goroutine
	// performs the reader duties; taking it grants them.
	token chan struct{}

	spaceWake    chan struct{} // reader → writer waiting for space
	spaceWaiting atomic.Bool   // a writer waits on spaceWake
	wantKick     atomic.Int32  // server reader sleeps until a handler slot frees
	done         chan struct{}
	failOnce     sync.Once
	err          *Error // set before done is closed
	releaseOnce  sync.Once
	released     chan struct{}

	bellData, bellSpace [1]byte // read-only after construction

	// dataBells, when set (server) before the endpoint starts, counts the
	// DATA doorbells rung: messages that found their consumer asleep.
	dataBells *atomic.Int64

	// Optional hooks, set before the endpoint starts: onFail runs once when
	// the endpoint closes; beforeSpaceWait runs before a writer sleeps for
	// ring space.
	onFail, beforeSpaceWait func()
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
		spin:       spinBudget{most: spin, cur: spin},
		mem:        mem,
		partial:    make(map[uint64]*partialMsg),
		wlock:      make(chan struct{}, 1),
		spaceWake:  make(chan struct{}, 1),
		done:       make(chan struct{}),
		released:   make(chan struct{}),
		bellData:   [1]byte{doorbellData},
		bellSpace:  [1]byte{doorbellSpace},
	}
	if r == roleClient {
		e.tx, e.rx, e.stateOff = newProducer(req), newConsumer(resp), offClientState
		e.token = make(chan struct{}, 1)
		e.token <- struct{}{}
	} else {
		e.tx, e.rx, e.stateOff = newProducer(resp), newConsumer(req), offServerState
	}
	e.txHead = e.tx.head
	e.txHeadSeen = atomic.LoadUint64(e.txHead)
	return e
}

// setLoneSpin enables the lone spin (see the loneSpin field) before the
// endpoint starts; d <= 0 leaves it off.
func (e *endpoint) setLoneSpin(d time.Duration, alone func() bool) {
	if d > 0 {
		e.loneSpin, e.alone = spinBudget{most: d, cur: d, probe: true, polite: e.role == roleClient}, alone
	}
}

// putToken ends a turn of reader duties: it hands the token on, or, once
// the endpoint has closed, releases the segment instead (the token is never
// returned, so no reader can start again). The release runs on its own
// goroutine because the reader may be a writer holding wlock, which
// release takes.
func (e *endpoint) putToken() {
	select {
	case <-e.done:
		go e.release()
	default:
		e.token <- struct{}{}
	}
}

// fail closes the endpoint with err (the first error wins) and closes the
// socket, which the peer sees as our death and which ends a read in
// progress. Resources are released by the reader.
func (e *endpoint) fail(err *Error) {
	e.failOnce.Do(func() {
		e.err = err
		close(e.done)
		_ = e.conn.Close()
		if e.onFail != nil {
			e.onFail()
		}
	})
}

// closedErr is the error of every operation after the endpoint closed.
func (e *endpoint) closedErr() *Error {
	<-e.done
	return e.err
}

// release unmaps the segment; it runs once, on the last reader, after fail.
func (e *endpoint) release() {
	e.releaseOnce.Do(func() {
		e.wlock <- struct{}{} // waits for the writer holding it, which sees done
		if e.mem != nil {
			atomic.StoreUint32(word32(e.mem, e.stateOff), stateClosed)
			_ = unmap(e.mem)
			e.mem, e.tx, e.rx, e.txHead = nil, nil, nil, nil
		}
		<-e.wlock
		e.partial = nil
		e.recv.onClose(e.err)
		close(e.released)
	})
}

// closeAndRelease closes the endpoint and waits until its segment is
// unmapped.
func (e *endpoint) closeAndRelease(err *Error) {
	e.fail(err)
	if e.token == nil {
		<-e.released
		return
	}
	select {
	case <-e.token:
		e.release()
	case <-e.released:
	}
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
	} else if e.dataBells != nil {
		e.dataBells.Add(1)
	}
	// An error means the peer is gone; the reader sees it on its next read.
	_, _ = e.conn.Write(bell)
}

// kickRead interrupts a reader sleeping in a read of the socket; it wakes
// with a deadline error and re-checks its conditions.
func (e *endpoint) kickRead() { _ = e.conn.SetReadDeadline(time.Now()) }

// kickForSlot wakes the server reader if it sleeps waiting for a handler
// slot. Callers free the slot first; the sequentially consistent atomics
// order that before the load of wantKick (the reader stores wantKick, then
// checks the slots).
func (e *endpoint) kickForSlot() {
	if e.wantKick.Load() == 1 && e.wantKick.CompareAndSwap(1, 0) {
		e.kickRead()
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
	if h.Flags&FlagEnd != 0 && !e.recv.reserve() {
		return errBusy
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

// lockW takes the writer lock, giving up when ctx (nil = never) ends or the
// endpoint closes; then it returns that error and holds nothing.
func (e *endpoint) lockW(ctx context.Context) error {
	select {
	case e.wlock <- struct{}{}:
		return nil
	default:
	}
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case e.wlock <- struct{}{}:
		return nil
	case <-ctxDone:
		return ctx.Err()
	case <-e.done:
		return e.err
	}
}

// tryLockW takes the writer lock if it is free.
func (e *endpoint) tryLockW() bool {
	select {
	case e.wlock <- struct{}{}:
		return true
	default:
		return false
	}
}

func (e *endpoint) unlockW() { <-e.wlock }
