package shm

import (
	"sync/atomic"
	"time"
)

// Calls started through AsyncHandler (server.go). The reader offers a call
// that overlaps others to HandleAsync; whoever completes it calls done,
// which sends the response if the ring has room now and otherwise hands
// the send to a worker, so that a completing goroutine (a Redis pipeline's
// reader serving many connections) never waits for one app's ring.

// asyncCall is one call started through AsyncHandler. state orders done
// against the reader's return from HandleAsync: a done that comes first
// leaves the response for the reader to send from a worker — the reader
// must not wait for ring space itself (the client it would wait for may be
// waiting for the reader to free request-ring space).
type asyncCall struct {
	sc    *serverConn
	j     job
	start time.Time
	state atomic.Int32

	// set by an early done, read by the reader once its CAS fails
	out  FrameHeader
	resp []byte
	ok   bool
}

const (
	asyncStarting int32 = iota // HandleAsync has not returned
	asyncRunning               // HandleAsync returned before done
	asyncEarly                 // done ran before HandleAsync returned
)

// maxAsync bounds a connection's asynchronous calls in flight; calls
// beyond it run through Handle. Unbounded, the reader would take every
// request out of the (shared) ring at once and hold them all in the heap:
// with 64 callers of 4 KiB values the sidecar's peak RssAnon grew 2–3 MiB;
// 16 keeps the gain at 16 callers (docs/benchmarks.md).
const maxAsync = 16

// startAsync offers j to the AsyncHandler; false means it declined and j
// is untouched (the call runs through Handle).
func (sc *serverConn) startAsync(j job) bool {
	if sc.asyncN.Add(1) > maxAsync {
		sc.asyncN.Add(-1)
		return false
	}
	a := &asyncCall{sc: sc, j: j, start: time.Now()}
	if !sc.async.HandleAsync(j.ctx, j.h.Method, j.req, a.done) {
		sc.asyncN.Add(-1)
		return false
	}
	sc.s.asyncCalls.Add(1)
	if !a.state.CompareAndSwap(asyncStarting, asyncRunning) {
		if !a.ok {
			sc.releaseAsync(j)
			return true
		}
		sc.workers.spawn(task{kind: taskSendAsync, j: j, out: a.out, resp: a.resp})
	}
	return true
}

// releaseAsync is release for an asynchronous call.
func (sc *serverConn) releaseAsync(j job) {
	sc.asyncN.Add(-1)
	sc.release(j)
}

// done is the completion given to HandleAsync.
func (a *asyncCall) done(resp []byte, err error) {
	sc := a.sc
	out, resp, ok := sc.answered(a.j, a.start, resp, err)
	if a.state.Load() == asyncStarting {
		// Stash first: the reader reads the stash only after this CAS
		// succeeded. (Once running, the state never changes again.)
		a.out, a.resp, a.ok = out, resp, ok
		if a.state.CompareAndSwap(asyncStarting, asyncEarly) {
			return
		}
	}
	if ok && !sc.ep.trySend(out, resp) {
		sc.workers.spawn(task{kind: taskSendAsync, j: a.j, out: out, resp: resp})
		return
	}
	sc.releaseAsync(a.j)
}
