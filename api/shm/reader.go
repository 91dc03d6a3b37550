package shm

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
)

// readUntil performs the reader duties — drain the consumed ring, spin
// briefly when it is empty, then sleep in a read of the socket until a
// doorbell, a kick or EOF (SPEC.md §6) — until stop (nil = never) reports
// true, ctxDone closes (its caller kicks the read) or the endpoint closes.
// It returns nil when stop held, errStopped for ctxDone, else the endpoint's
// error. One goroutine at a time.
func (e *endpoint) readUntil(stop func() bool, ctxDone <-chan struct{}) error {
	var buf [64]byte
	for {
		select {
		case <-e.done:
			return e.err
		case <-ctxDone:
			return errStopped
		default:
		}
		progress, busy, err := e.drain()
		if err != nil {
			e.fail(newError(codes.Unavailable, err, "protocol error from peer"))
			return e.err
		}
		e.pollSpace()
		if stop != nil && stop() {
			return nil
		}
		if progress {
			continue
		}
		if busy {
			e.wantKick.Store(1)
			if e.recv.canReserve() {
				e.wantKick.Store(0)
				continue
			}
		} else {
			if e.idleSpin(stop) {
				continue
			}
			e.rx.park()
			if e.rx.pending() || (stop != nil && stop()) {
				e.rx.unpark()
				continue
			}
		}
		n, err := e.conn.Read(buf[:])
		if busy {
			e.wantKick.Store(0)
		} else {
			e.rx.unpark()
		}
		if perr := e.doorbells(buf[:n]); perr != nil {
			return perr
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) { // kicked
				_ = e.conn.SetReadDeadline(time.Time{})
				continue
			}
			e.fail(newError(codes.Unavailable, err, "peer connection lost"))
			return e.err
		}
	}
}

// errStopped reports that readUntil returned because ctxDone closed.
var errStopped = errors.New("shm: reader stopped")

// doorbells handles bytes read from the socket.
func (e *endpoint) doorbells(b []byte) error {
	for _, c := range b {
		switch c {
		case doorbellData:
		case doorbellSpace:
			notify(e.spaceWake)
		default:
			e.fail(newError(codes.Unavailable, nil, "protocol error: unknown doorbell byte 0x%02x", c))
			return e.err
		}
	}
	return nil
}

// pollOnce performs the reader duties once without sleeping: it drains the
// ring and reads what the socket holds (the client's idle check for a dead
// sidecar). It returns the endpoint's error once closed.
func (e *endpoint) pollOnce() error {
	if _, _, err := e.drain(); err != nil {
		e.fail(newError(codes.Unavailable, err, "protocol error from peer"))
		return e.err
	}
	var buf [64]byte
	n, eof, err := readNonBlocking(e.conn, buf[:])
	if perr := e.doorbells(buf[:n]); perr != nil {
		return perr
	}
	if eof || err != nil {
		e.fail(newError(codes.Unavailable, err, "peer connection lost"))
		return e.err
	}
	return nil
}

// pollSpace wakes a writer waiting for space when the peer consumed from
// our produced ring: while the reader is busy it does not read the socket,
// so it may not see the SPACE doorbell soon.
func (e *endpoint) pollSpace() {
	if !e.spaceWaiting.Load() {
		return
	}
	if h := atomic.LoadUint64(e.txHead); h != e.txHeadSeen {
		e.txHeadSeen = h
		notify(e.spaceWake)
	}
}

// spinBudget is an adaptive spin budget: a spin that catches data doubles
// it (up to most), one that times out halves it (down to a floor of
// most/spinFloorDiv), so a peer that answers slowly — a handler waiting on
// Redis — costs little spinning, and a fast one is caught without a
// syscall. Halving alone would be a trap: once the budget has fallen below
// the peer's usual answer time no spin catches an answer, and it would
// never grow back (a sidecar answering in 30 µs, a lone budget of 200 µs
// fallen to its 12.5 µs floor by a few slow calls). So every probeEvery-th
// spin at the floor spins the whole of most: if it catches the answer, the
// budget is back at most. A slow peer thus costs about floor + most/probeEvery
// of spinning per wait. Only lone budgets probe: with concurrent callers,
// probing the 5 µs spin back up cost 7% of the in-memory calls/s at 16
// callers (the spinning competes for the CPUs with the callers), and lone
// callers are where a wake-up saved matters. Owned by the goroutine
// performing the reader duties.
type spinBudget struct {
	most, cur time.Duration
	probe     bool   // probe from the floor
	atFloor   uint32 // spins at the floor since the last probe
	// polite spins yield the CPU between polls (yieldCPU). A lone client
	// spins while the sidecar polls its backend and the backend (Redis)
	// must run too: on two cores a spinner that keeps its core makes the
	// backend wait for the scheduler to preempt it. Measured (one caller,
	// GetState on Redis, 3 x 33,000 calls, 2 vCPU): the replies that found
	// the app asleep fell from 11-23% of calls to under 1% and p99 from
	// 290-314 µs to 134-162 µs. The sidecar's own spins do not yield: there
	// that cost 1.5-25 µs at the median.
	polite bool
}

const (
	spinFloorDiv = 16
	probeEvery   = 16
)

// next returns the length of the next spin.
func (b *spinBudget) next() time.Duration {
	if b.probe && b.cur <= b.most/spinFloorDiv {
		if b.atFloor++; b.atFloor%probeEvery == 0 {
			return b.most
		}
	}
	return b.cur
}

// caught adapts the budget after a spin of d that caught data.
func (b *spinBudget) caught(d time.Duration) { b.cur = min(b.most, 2*d) }

// timedOut adapts the budget after a spin that caught nothing.
func (b *spinBudget) timedOut() { b.cur = max(b.most/spinFloorDiv, b.cur/2) }

// idleSpin polls the consumed ring (and stop) for up to the current budget;
// it reports whether there is something to do.
func (e *endpoint) idleSpin(stop func() bool) bool {
	b := &e.spin
	if e.loneSpin.most > 0 && e.alone() {
		b = &e.loneSpin
	}
	if b.most <= 0 {
		return false
	}
	d := b.next()
	if spinWait(d, b.polite, func() bool { return e.rx.pending() || (stop != nil && stop()) }) {
		b.caught(d)
		return true
	}
	b.timedOut()
	return false
}

// spinWait polls cond for up to d without giving up the thread (polite: it
// lets other runnable threads of its CPU run every 32 polls). It does not
// call runtime.Gosched: that puts the goroutine on the global run queue and
// wakes another OS thread to take it, on every call — measured, that costs
// far more than the spin saves.
func spinWait(d time.Duration, polite bool, cond func() bool) bool {
	start := time.Now()
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		if i%32 == 0 {
			if time.Since(start) > d {
				return false
			}
			if polite {
				yieldCPU()
			}
		}
	}
}

// drain delivers every available frame and frees their space, releasing
// every quarter ring so a waiting producer can proceed during long batches.
// busy reports that it stopped at a request for which no handler slot was
// free; that frame stays in the ring.
func (e *endpoint) drain() (progress, busy bool, err error) {
	start, since := e.rx.pos, e.rx.pos
	for {
		at := e.rx.pos
		h, p, ok, err := e.rx.next()
		if err != nil {
			return true, false, err
		}
		if !ok {
			break
		}
		if err := e.deliver(h, p); err != nil {
			if err != errBusy {
				return true, false, err
			}
			e.rx.pos, busy = at, true
			break
		}
		if e.rx.pos-since >= e.rx.size/4 {
			e.releaseRx()
			since = e.rx.pos
		}
	}
	if e.rx.pos != e.rx.published {
		e.releaseRx()
	}
	return e.rx.pos != start, busy, nil
}

func (e *endpoint) releaseRx() {
	e.rx.release()
	if e.rx.takeProducerParked() {
		e.ring(doorbellSpace)
	}
}
