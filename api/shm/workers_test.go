package shm

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The pool reuses a parked worker, keeps at most maxIdleWorkers, stops
// workers idle for two janitor ticks, and none after close.
func TestWorkerPoolReusesAndTrims(t *testing.T) {
	checkLeaks(t)
	var p workerPool
	var ran atomic.Int64
	var wg sync.WaitGroup
	p.init(func(task) { ran.Add(1); wg.Done() })
	// The test ticks the janitor itself: marked armed, park never starts
	// the real timer.
	p.armed = true
	idle := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.idle) }
	// settled: every worker has parked or exited.
	settled := func() bool { return int64(idle()) == p.live.Load() }

	// Sequential tasks reuse one worker.
	for i := 0; i < 100; i++ {
		wg.Add(1)
		p.spawn(task{kind: taskRun})
		wg.Wait()
		waitFor(t, "the worker to park", 5*time.Second, func() bool { return idle() == 1 })
	}

	// Concurrent tasks grow the pool; at most maxIdleWorkers stay.
	block := make(chan struct{})
	p.mu.Lock()
	p.do = func(task) { <-block; ran.Add(1); wg.Done() }
	p.mu.Unlock()
	n := maxIdleWorkers + 10
	wg.Add(n)
	for i := 0; i < n; i++ {
		p.spawn(task{kind: taskRun})
	}
	close(block)
	wg.Wait()
	waitFor(t, "the workers to park or exit", 5*time.Second, settled)
	if idle() != maxIdleWorkers {
		t.Fatalf("%d workers idle, want %d", idle(), maxIdleWorkers)
	}
	if got := ran.Load(); got != int64(100+n) {
		t.Fatalf("ran %d tasks, want %d", got, 100+n)
	}

	// Two janitor ticks without tasks stop the idle workers.
	p.trim()
	if idle() != maxIdleWorkers {
		t.Fatalf("one tick stopped workers parked since it: %d idle", idle())
	}
	p.trim()
	if idle() != 0 {
		t.Fatalf("%d workers idle after two ticks, want 0", idle())
	}

	// After close, idle workers exit and finished ones do not park.
	wg.Add(1)
	p.spawn(task{kind: taskRun})
	wg.Wait()
	waitFor(t, "the worker to park", 5*time.Second, func() bool { return idle() == 1 })
	p.close()
	if idle() != 0 {
		t.Fatal("close left idle workers")
	}
	wg.Add(1)
	p.spawn(task{kind: taskRun})
	wg.Wait()
	waitFor(t, "the workers to exit", 5*time.Second, func() bool { return p.live.Load() == 0 })
	if idle() != 0 {
		t.Fatal("a worker parked after close")
	}
}
