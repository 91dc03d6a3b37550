package shm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Inline dispatch. Handing a request to another goroutine costs a wake-up
// of another OS thread, which measured here as the largest single cost of a
// round trip. So the goroutine that read a batch runs the handler of its
// last request itself, and hands the others to other workers (workers.go:
// goroutines kept per connection, not new ones). If that method's handlers
// have been slow (average over inlineMax), it first hands the reader duties
// to another worker. If they have been fast, it keeps them and nobody reads
// requests while the handler runs. Two things hand the reader duties to
// another worker ("rescue") when that matters: a handler of this connection that
// must wait for ring space (the reader would free it), and a watchdog that
// ticks every watchEvery while inline handlers run and rescues one that has
// run longer than rescueAfter. With ServerOptions.LoneSpin, a slow request
// that is the connection's only call runs inline too (the reader then polls
// for the caller's next request instead of sleeping); the watchdog rescues
// it once it has run longer than LoneSpin, so a request that arrives
// meanwhile waits at most about LoneSpin + watchEvery. (A timer per call
// would be finer, but arming one wakes the runtime's poller; Go's timers are
// coarse — a millisecond — when the process is idle anyway.)
const (
	inlineMax   = 10 * time.Microsecond
	rescueAfter = 50 * time.Microsecond
	watchEvery  = time.Millisecond
	// costSlots bounds the method ids whose cost is tracked; others are
	// never run inline.
	costSlots = 64
	// loneQuiet is how long a connection must have had no overlapping
	// calls before a call counts as lone (ServerOptions.LoneSpin).
	loneQuiet = 10 * time.Millisecond
)

// methodCosts tracks the average handler duration per method id (ns,
// exponentially weighted, updates may race and lose one sample).
type methodCosts struct {
	avg [costSlots]atomic.Int64
	// fastBelow is the average under which a method counts as fast
	// (inlineMax; tests change it).
	fastBelow atomic.Int64
}

func (m *methodCosts) fast(method uint16) bool {
	return m.below(method, time.Duration(m.fastBelow.Load()))
}

// below reports whether method's handlers have finished within d on average.
func (m *methodCosts) below(method uint16, d time.Duration) bool {
	return int(method) < costSlots && m.avg[method].Load() < int64(d)
}

func (m *methodCosts) record(method uint16, d time.Duration) {
	if int(method) >= costSlots {
		return
	}
	old := m.avg[method].Load()
	m.avg[method].Store(old + (int64(d)-old)/8)
}

// serverConn is one established connection on the server.
type serverConn struct {
	s      *Server
	h      Handler
	async  AsyncHandler // h, when it is one; nil otherwise
	asyncN atomic.Int64 // asynchronous calls in flight (async.go)
	ep     *endpoint
	ctx    context.Context // carries the Peer; cancelled when the connection closes
	cancel context.CancelFunc
	mapped uint64
	// slots counts running handlers, at most maxCalls (reader reserves,
	// handlers free).
	slots    atomic.Int64
	maxCalls int64

	// Reader-owned: the request to run inline after the current drain.
	next    job
	hasNext bool
	// vacant is true while the reader runs a handler inline; whoever sets
	// it back to false (the reader when the handler returns, or rescue)
	// owns the reader duties.
	vacant      atomic.Bool
	inlineStart atomic.Int64 // UnixNano when the running inline handler started, 0 if none
	inlineLimit atomic.Int64 // ns the running inline handler may run before a rescue
	inlineRuns  atomic.Int64
	// handling counts the requests read whose handler has not returned yet
	// (slots, by contrast, are freed once the response is sent).
	handling atomic.Int64
	// overlapAt is when (UnixNano) a request last arrived while another
	// handler of the connection was running: the lone mode (LoneSpin) waits
	// for loneQuiet after it, so that callers that overlap are served as
	// before.
	overlapAt  atomic.Int64
	watch      *time.Timer
	watchArmed atomic.Bool
	watchRuns  int64 // watchdog only

	mu       sync.Mutex
	inflight map[uint64]*serverCall

	// workers run the reader duties and the handlers (workers.go).
	workers workerPool
}

type serverCall struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool // by a CANCEL frame: no response is sent
}

type job struct {
	ctx context.Context
	c   *serverCall
	h   FrameHeader
	req []byte
}

func newServerConn(s *Server, h Handler, ctx context.Context, cancel context.CancelFunc, mapped uint64) *serverConn {
	sc := &serverConn{
		s:        s,
		h:        h,
		ctx:      ctx,
		cancel:   cancel,
		maxCalls: int64(s.opts.MaxConcurrentCalls),
		inflight: make(map[uint64]*serverCall),
		mapped:   mapped,
	}
	sc.async, _ = h.(AsyncHandler)
	sc.watch = time.AfterFunc(time.Hour, sc.watchdog)
	sc.watch.Stop()
	sc.workers.init(sc.do)
	return sc
}

// do runs a task on a worker (workerPool.spawn).
func (sc *serverConn) do(t task) {
	switch t.kind {
	case taskServe:
		sc.serve()
	case taskRun:
		sc.run(t.j)
	case taskSendAsync:
		_ = sc.ep.send(nil, t.out, t.resp, false)
		sc.releaseAsync(t.j)
	}
}

// goServe hands the reader duties to another worker (also how a new
// connection starts being served).
func (sc *serverConn) goServe() { sc.workers.spawn(task{kind: taskServe}) }

// goRun runs j on another worker.
func (sc *serverConn) goRun(j job) { sc.workers.spawn(task{kind: taskRun, j: j}) }

// serve performs the reader duties and runs inline requests, until the
// connection closes or a rescuer takes over.
func (sc *serverConn) serve() {
	e := sc.ep
	for {
		if err := e.readUntil(sc.hasInline, nil); err != nil {
			if sc.hasNext {
				sc.hasNext = false
				sc.goRun(sc.next) // its context is already cancelled
			}
			e.release()
			return
		}
		j := sc.next
		sc.next, sc.hasNext = job{}, false
		limit := rescueAfter
		if !sc.s.costs.fast(j.h.Method) {
			if !sc.lone(j.h.Method) {
				// A slow handler (one waiting on Redis, say): hand the
				// reader duties to a new goroutine and run the handler
				// here, on the thread the kernel woke, rather than the
				// other way round — the new reader is not on anybody's
				// critical path.
				sc.goServe()
				sc.run(j)
				return
			}
			// The connection's only call (ServerOptions.LoneSpin): keep
			// the reader duties, so that this thread, still awake, reads
			// the caller's next request.
			limit = max(limit, sc.s.opts.LoneSpin)
			sc.s.loneRuns.Add(1)
		}
		sc.vacant.Store(true)
		sc.inlineRuns.Add(1)
		sc.inlineLimit.Store(int64(limit))
		sc.inlineStart.Store(time.Now().UnixNano())
		if !sc.watchArmed.Load() && sc.watchArmed.CompareAndSwap(false, true) {
			sc.watch.Reset(watchEvery)
		}
		sc.run(j)
		sc.inlineStart.Store(0)
		if !sc.vacant.CompareAndSwap(true, false) {
			return // a rescuer performs the reader duties now
		}
	}
}

func (sc *serverConn) hasInline() bool { return sc.hasNext }

// lone reports whether a request of method may run inline although it is not
// fast: LoneSpin is on, it is the connection's only call (no other handler
// running), no calls have overlapped for loneQuiet, LoneOnlyIf agrees, and
// the method's handlers have finished within LoneSpin on average.
func (sc *serverConn) lone(method uint16) bool {
	ls := sc.s.opts.LoneSpin
	return ls > 0 && sc.handling.Load() == 1 && sc.quiet() && sc.s.costs.below(method, ls)
}

// idle reports that no handler of the connection is running and none have
// overlapped for loneQuiet (the reader's lone spin).
func (sc *serverConn) idle() bool { return sc.handling.Load() == 0 && sc.quiet() }

func (sc *serverConn) quiet() bool {
	if f := sc.s.opts.LoneOnlyIf; f != nil && !f() {
		return false
	}
	return time.Now().UnixNano()-sc.overlapAt.Load() > int64(loneQuiet)
}

// rescue hands the reader duties to a new goroutine if the reader is
// running a handler inline; it runs on the watchdog and on writers that
// must wait for space.
func (sc *serverConn) rescue() {
	if sc.vacant.Load() && sc.vacant.CompareAndSwap(true, false) {
		sc.s.rescues.Add(1)
		sc.goServe()
	}
}

// watchdog runs every watchEvery while inline handlers run (see above).
func (sc *serverConn) watchdog() {
	if start := sc.inlineStart.Load(); start != 0 && time.Since(time.Unix(0, start)) > time.Duration(sc.inlineLimit.Load()) {
		sc.rescue()
	}
	runs := sc.inlineRuns.Load()
	active := runs != sc.watchRuns || sc.inlineStart.Load() != 0
	sc.watchRuns = runs
	if !active {
		// Disarm, then look again: serve marks activity before it checks
		// the flag, so one of us sees the other (sequentially consistent
		// atomics).
		sc.watchArmed.Store(false)
		if sc.inlineRuns.Load() == runs && sc.inlineStart.Load() == 0 {
			return
		}
		if !sc.watchArmed.CompareAndSwap(false, true) {
			return
		}
	}
	select {
	case <-sc.ctx.Done():
		sc.watchArmed.Store(false)
	default:
		sc.watch.Reset(watchEvery)
	}
}

// reserve takes a handler slot for the request about to complete.
func (sc *serverConn) reserve() bool {
	if sc.slots.Add(1) > sc.maxCalls {
		sc.slots.Add(-1)
		return false
	}
	return true
}

func (sc *serverConn) canReserve() bool { return sc.slots.Load() < sc.maxCalls }

func (sc *serverConn) freeSlot() {
	sc.slots.Add(-1)
	sc.ep.kickForSlot()
}

// onMessage dispatches a complete request (reader) in the slot reserve
// took: the newest request waits to run inline, earlier ones of the same
// batch get goroutines.
// When every slot is taken the reader stops reading requests, so the
// request ring fills and the client waits (back-pressure).
func (sc *serverConn) onMessage(h FrameHeader, payload []byte) error {
	sc.mu.Lock()
	_, dup := sc.inflight[h.Stream]
	sc.mu.Unlock()
	if dup {
		sc.freeSlot()
		return frameErr("stream", "%d is already in flight", h.Stream)
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if h.TimeoutMicros != 0 {
		ctx, cancel = context.WithTimeout(sc.ctx, time.Duration(h.TimeoutMicros)*time.Microsecond)
	} else {
		ctx, cancel = context.WithCancel(sc.ctx)
	}
	c := &serverCall{cancel: cancel}
	if sc.handling.Add(1) > 1 && sc.s.opts.LoneSpin > 0 {
		sc.overlapAt.Store(time.Now().UnixNano())
	}
	sc.mu.Lock()
	sc.inflight[h.Stream] = c
	sc.mu.Unlock()
	sc.s.wg.Add(1)
	sc.s.inflight.Add(1)
	sc.s.calls.Add(1)
	j := job{ctx: ctx, c: c, h: h, req: payload}
	if sc.async != nil && sc.handling.Load() > 1 && sc.startAsync(j) {
		return nil
	}
	if sc.hasNext {
		sc.goRun(sc.next)
		sc.next, sc.hasNext = job{}, false
	}
	sc.next, sc.hasNext = j, true
	return nil
}

// run calls the handler and sends its response.
func (sc *serverConn) run(j job) {
	defer sc.release(j)
	start := time.Now()
	resp, err := sc.h.Handle(j.ctx, j.h.Method, j.req)
	if out, resp, ok := sc.answered(j, start, resp, err); ok {
		// An error means the connection closed; the client learns that by itself.
		_ = sc.ep.send(nil, out, resp, false)
	}
}

// answered does the bookkeeping of a call whose handler returned and builds
// its response frame; ok is false when the client cancelled the call (no
// response is sent).
func (sc *serverConn) answered(j job, start time.Time, resp []byte, err error) (out FrameHeader, _ []byte, ok bool) {
	sc.handling.Add(-1)
	sc.s.costs.record(j.h.Method, time.Since(start))
	sc.mu.Lock()
	delete(sc.inflight, j.h.Stream)
	sc.mu.Unlock()
	if j.c.cancelled.Load() {
		return out, nil, false
	}
	out = FrameHeader{Method: j.h.Method, Stream: j.h.Stream}
	switch {
	case err != nil:
		out.Flags, resp = FlagError, encodeStatus(err)
	case uint64(len(resp)) > uint64(sc.ep.maxMessage):
		out.Flags, resp = FlagError, encodeStatus(status.Errorf(codes.ResourceExhausted,
			"shm: response of %d bytes exceeds the max message size %d", len(resp), sc.ep.maxMessage))
	}
	return out, resp, true
}

// release ends a call once its response is sent (or dropped): its context,
// its handler slot, the server's counts.
func (sc *serverConn) release(j job) {
	j.c.cancel()
	sc.freeSlot()
	sc.s.inflight.Add(-1)
	sc.s.wg.Done()
}

// onCancel stops the handler of a stream the client abandoned.
func (sc *serverConn) onCancel(h FrameHeader) error {
	sc.mu.Lock()
	c := sc.inflight[h.Stream]
	sc.mu.Unlock()
	if c != nil && !c.cancelled.Swap(true) {
		sc.s.cancelled.Add(1)
		c.cancel()
	}
	return nil
}

// onClose runs after the segment is unmapped.
func (sc *serverConn) onClose(*Error) {
	sc.watch.Stop()
	sc.workers.close()
	sc.cancel()
	s := sc.s
	s.mu.Lock()
	delete(s.conns, sc)
	s.mu.Unlock()
	s.conns64.Add(-1)
	s.mapped.Add(-int64(sc.mapped))
	s.wg.Done()
}
