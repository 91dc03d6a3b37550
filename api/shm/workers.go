package shm

import (
	"sync"
	"sync/atomic"
	"time"
)

// Worker goroutines. Every goroutine that serves a connection — the one
// performing the reader duties, a handler handed off by the reader, a
// rescuer — used to be a new goroutine. A new goroutine starts on a small
// stack, and a handler's call tree (service, governance chain, go-redis,
// protobuf) is deep enough that its stack was grown and copied several
// times on every call: runtime.morestack/copystack were 14% of the shm
// sidecar's CPU with 16 callers on GetState (docs/benchmarks.md). A worker
// keeps its goroutine, hence its grown stack, between tasks: morestack fell
// to 0.1%, sidecar CPU per call to 0.62-0.93x, calls/s with 16 callers rose
// 1.24-1.41x (interleaved A/B, 2026-12-07).
//
// Lifecycle: the pool belongs to one serverConn. spawn hands a task to the
// most recently idle worker (its stack is the likeliest to be warm and
// large enough) or starts a new one; there is no bound on live workers
// beyond the connection's (handlers are bounded by MaxConcurrentCalls, and
// one goroutine at a time does the reader duties), so a task never waits
// for a worker. A worker that finishes a task parks idle unless maxIdleWorkers
// already are, or the connection closed; then it exits. Idle workers exit
// after one to two workerIdle periods without a task (a janitor timer, armed
// only while some worker is idle, so the hot path arms no timer), and all of
// them at once when the connection closes (close). All methods are safe for
// concurrent use.
const (
	maxIdleWorkers = 64
	workerIdle     = time.Second
)

type taskKind uint8

const (
	taskServe     taskKind = iota // perform the reader duties (serverConn.serve)
	taskRun                       // run one handler (serverConn.run)
	taskSendAsync                 // send an asynchronous call's response, waiting for ring space (async.go)
	taskQuit                      // exit: idle too long, or the connection closed
)

type task struct {
	kind taskKind
	j    job         // taskRun, taskSendAsync
	out  FrameHeader // taskSendAsync
	resp []byte      // taskSendAsync
}

type worker struct {
	tasks chan task // capacity 1: a sender never blocks (it popped the worker first)
	epoch uint64    // pool epoch when the worker parked; under pool.mu
}

type workerPool struct {
	mu      sync.Mutex
	idle    []*worker // LIFO: the most recently parked last
	epoch   uint64    // janitor ticks
	armed   bool      // the janitor timer is pending
	closed  bool
	janitor *time.Timer
	do      func(task)   // runs a task; set by init
	live    atomic.Int64 // worker goroutines running (for tests)
}

// init prepares the pool; do runs the tasks (taskServe and taskRun).
func (p *workerPool) init(do func(task)) {
	p.do = do
	p.janitor = time.AfterFunc(time.Hour, p.trim)
	p.janitor.Stop()
}

// spawn runs t on an idle worker or on a new worker goroutine.
func (p *workerPool) spawn(t task) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.tasks <- t
		return
	}
	p.mu.Unlock()
	p.live.Add(1)
	go p.work(&worker{tasks: make(chan task, 1)}, t)
}

// work is a worker's loop: run a task, park, take the next one.
func (p *workerPool) work(w *worker, t task) {
	defer p.live.Add(-1)
	for t.kind != taskQuit {
		p.do(t)
		if !p.park(w) {
			return
		}
		t = <-w.tasks
	}
}

// park puts w on the idle list; false means it must exit instead.
func (p *workerPool) park(w *worker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdleWorkers {
		return false
	}
	w.epoch = p.epoch
	p.idle = append(p.idle, w)
	if !p.armed {
		p.armed = true
		p.janitor.Reset(workerIdle)
	}
	return true
}

// trim runs on the janitor timer: it stops the workers that have been idle
// since before the previous tick (the oldest are first in the list), and
// re-arms while workers stay idle.
func (p *workerPool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch++
	n := 0
	for n < len(p.idle) && p.idle[n].epoch+1 < p.epoch {
		p.idle[n].tasks <- task{kind: taskQuit}
		n++
	}
	if n > 0 {
		k := copy(p.idle, p.idle[n:])
		clear(p.idle[k:])
		p.idle = p.idle[:k]
	}
	if p.closed || len(p.idle) == 0 {
		p.armed = false
		return
	}
	p.janitor.Reset(workerIdle)
}

// close stops the idle workers; busy ones exit when their task ends.
func (p *workerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.janitor.Stop()
	p.armed = false
	for i, w := range p.idle {
		w.tasks <- task{kind: taskQuit}
		p.idle[i] = nil
	}
	p.idle = nil
}
