package shm

import "time"

// Calls started through AsyncHandler (server.go). The reader offers a call
// that overlaps others to HandleAsync; whoever completes it — the reader
// itself when HandleAsync answers at once, or a Redis pipeline's reader
// serving many connections — calls done, which never waits: it sends the
// response if the ring has room now and otherwise hands the send to a
// worker, so that neither the reader (whose client may be waiting for it to
// free request-ring space) nor a goroutine serving other apps waits for one
// app's ring.

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
	start := time.Now()
	done := func(resp []byte, err error) { sc.finishAsync(j, start, resp, err) }
	if !sc.async.HandleAsync(j.ctx, j.h.Method, j.req, done) {
		sc.asyncN.Add(-1)
		return false
	}
	sc.s.asyncCalls.Add(1)
	return true
}

// finishAsync answers an asynchronous call without waiting: into the ring
// if it has room now, else from a worker (taskSendAsync).
func (sc *serverConn) finishAsync(j job, start time.Time, resp []byte, err error) {
	out, resp, ok := sc.answered(j, start, resp, err)
	if ok && !sc.ep.trySend(out, resp) {
		sc.workers.spawn(task{kind: taskSendAsync, j: j, out: out, resp: resp})
		return
	}
	sc.releaseAsync(j)
}

// releaseAsync is release for an asynchronous call.
func (sc *serverConn) releaseAsync(j job) {
	sc.asyncN.Add(-1)
	sc.release(j)
}
