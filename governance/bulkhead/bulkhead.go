// Package bulkhead bounds the calls running at once, with a bounded queue of
// callers that wait up to a timeout for a slot.
//
// Slots are an atomic counter: taking a free slot is one compare-and-swap
// and giving it back one atomic add, with no lock and no goroutine. Only a
// caller that has to wait takes the lock, to join the FIFO queue; a release
// hands its slot directly to the oldest waiter. Callers arriving while others
// wait may take a slot freed in between (no strict fairness).
package bulkhead

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
)

var (
	// ErrFull: every slot is taken and the queue is full (or there is none).
	ErrFull = fmt.Errorf("bulkhead full: %w", errkind.ErrResourceExhausted)
	// ErrQueueTimeout: the caller waited the queue timeout without a slot.
	ErrQueueTimeout = fmt.Errorf("bulkhead queue timeout: %w", errkind.ErrResourceExhausted)
)

// Config of a bulkhead.
type Config struct {
	MaxConcurrent int           // > 0
	MaxQueue      int           // callers allowed to wait; 0: none
	QueueTimeout  time.Duration // > 0 when MaxQueue > 0
}

// Bulkhead is a concurrency limit with a wait queue. Safe for concurrent use.
type Bulkhead struct {
	cfg     Config
	clk     clock.Clock
	avail   atomic.Int64 // free slots
	waiting atomic.Int64 // len(queue), readable without the lock
	mu      sync.Mutex
	queue   []*waiter
}

type waiter struct {
	ch      chan struct{} // receives the handed-over slot
	granted bool          // guarded by Bulkhead.mu
}

// New returns a bulkhead with every slot free. clk times the queue waits.
func New(cfg Config, clk clock.Clock) (*Bulkhead, error) {
	switch {
	case cfg.MaxConcurrent <= 0:
		return nil, errkind.InvalidArgument("max_concurrent", "must be > 0, got %d", cfg.MaxConcurrent)
	case cfg.MaxQueue < 0:
		return nil, errkind.InvalidArgument("max_queue", "must be >= 0, got %d", cfg.MaxQueue)
	case cfg.MaxQueue > 0 && cfg.QueueTimeout <= 0:
		return nil, errkind.InvalidArgument("queue_timeout", "must be > 0 when max_queue > 0, got %v", cfg.QueueTimeout)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	b := &Bulkhead{cfg: cfg, clk: clk}
	b.avail.Store(int64(cfg.MaxConcurrent))
	return b, nil
}

// InUse returns the number of slots taken.
func (b *Bulkhead) InUse() int { return b.cfg.MaxConcurrent - int(b.avail.Load()) }

// Waiting returns the number of queued callers.
func (b *Bulkhead) Waiting() int { return int(b.waiting.Load()) }

// TryAcquire takes a free slot without waiting.
func (b *Bulkhead) TryAcquire() bool {
	for {
		v := b.avail.Load()
		if v <= 0 {
			return false
		}
		if b.avail.CompareAndSwap(v, v-1) {
			return true
		}
	}
}

// Acquire takes a slot, waiting in the queue up to the queue timeout. It
// returns ErrFull when it may not wait, ErrQueueTimeout when the wait timed
// out, and the context's error when ctx ended first. On nil the caller owns a
// slot and must Release it.
func (b *Bulkhead) Acquire(ctx context.Context) error {
	if b.TryAcquire() {
		return nil
	}
	return b.wait(ctx)
}

func (b *Bulkhead) wait(ctx context.Context) error {
	if b.cfg.MaxQueue == 0 {
		return ErrFull
	}
	b.mu.Lock()
	if len(b.queue) >= b.cfg.MaxQueue {
		b.mu.Unlock()
		return ErrFull
	}
	w := &waiter{ch: make(chan struct{}, 1)}
	b.queue = append(b.queue, w)
	b.waiting.Add(1)
	// A release that happened before waiting became visible did not see us:
	// look again now that we are queued.
	if b.TryAcquire() {
		b.remove(w)
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()

	t := b.clk.NewTimer(b.cfg.QueueTimeout)
	var err error
	select {
	case <-w.ch:
		t.Stop()
		return nil
	case <-t.C():
		err = ErrQueueTimeout
	case <-ctx.Done():
		t.Stop()
		err = ctx.Err()
	}
	b.mu.Lock()
	if w.granted { // a slot arrived as we gave up: give it back
		b.mu.Unlock()
		b.Release()
		return err
	}
	b.remove(w)
	b.mu.Unlock()
	return err
}

// remove takes w out of the queue. Caller holds mu.
func (b *Bulkhead) remove(w *waiter) {
	for i, x := range b.queue {
		if x == w {
			copy(b.queue[i:], b.queue[i+1:])
			b.queue[len(b.queue)-1] = nil
			b.queue = b.queue[:len(b.queue)-1]
			b.waiting.Add(-1)
			return
		}
	}
}

// Release gives back a slot, handing it to the oldest waiter if any.
func (b *Bulkhead) Release() {
	b.avail.Add(1)
	if b.waiting.Load() == 0 {
		return
	}
	b.mu.Lock()
	for len(b.queue) > 0 && b.TryAcquire() {
		w := b.queue[0]
		b.remove(w)
		w.granted = true
		w.ch <- struct{}{}
	}
	b.mu.Unlock()
}

// IsRejection reports whether err is one of the bulkhead's rejections.
func IsRejection(err error) bool { return errors.Is(err, ErrFull) || errors.Is(err, ErrQueueTimeout) }
