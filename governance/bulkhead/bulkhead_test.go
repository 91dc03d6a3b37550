package bulkhead

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustNew(t *testing.T, cfg Config, clk clock.Clock) *Bulkhead {
	t.Helper()
	b, err := New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBulkheadRejectsBeyondMaxConcurrentWithoutQueue(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 2}, nil)
	ctx := context.Background()
	for i := range 2 {
		if err := b.Acquire(ctx); err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
	}
	err := b.Acquire(ctx)
	if !errors.Is(err, ErrFull) || !errors.Is(err, errkind.ErrResourceExhausted) {
		t.Fatalf("third acquire: %v, want bulkhead full / resource exhausted", err)
	}
	b.Release()
	if err := b.Acquire(ctx); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if b.InUse() != 2 {
		t.Fatalf("in use %d, want 2", b.InUse())
	}
}

func TestBulkheadQueueTimeoutReturnsResourceExhausted(t *testing.T) {
	clk := clock.NewFake()
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: 100 * time.Millisecond}, clk)
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- b.Acquire(ctx) }()
	if !clk.WaitTimers(1) {
		t.Fatal("waiter never queued")
	}
	// The queue holds one: a second waiter is rejected at once.
	if err := b.Acquire(ctx); !errors.Is(err, ErrFull) {
		t.Fatalf("acquire with a full queue: %v, want ErrFull", err)
	}
	clk.Advance(99 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("waiter returned %v before the timeout", err)
	default:
	}
	clk.Advance(time.Millisecond)
	err := <-done
	if !errors.Is(err, ErrQueueTimeout) || !errors.Is(err, errkind.ErrResourceExhausted) {
		t.Fatalf("queued acquire: %v, want queue timeout / resource exhausted", err)
	}
	if b.Waiting() != 0 || b.InUse() != 1 {
		t.Fatalf("after timeout: waiting %d in use %d, want 0 and 1", b.Waiting(), b.InUse())
	}
}

func TestBulkheadReleaseHandsSlotToOldestWaiter(t *testing.T) {
	clk := clock.NewFake()
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 2, QueueTimeout: time.Second}, clk)
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			if err := b.Acquire(ctx); err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			order <- i
			b.Release()
		})
		if !clk.WaitTimers(i + 1) { // queue them in a known order
			t.Fatal("waiter never queued")
		}
	}
	b.Release()
	wg.Wait()
	if a, c := <-order, <-order; a != 0 || c != 1 {
		t.Fatalf("served %d then %d, want FIFO 0 then 1", a, c)
	}
	if b.InUse() != 0 {
		t.Fatalf("in use %d after all released", b.InUse())
	}
}

func TestBulkheadWaitEndsWithContext(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: time.Hour}, clock.NewFake())
	if err := b.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Acquire(ctx) }()
	for b.Waiting() == 0 {
		time.Sleep(50 * time.Microsecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire: %v, want context canceled", err)
	}
}

// Under contention the number of holders never exceeds the limit and every
// slot comes back.
func TestBulkheadConcurrentNeverExceedsLimit(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 3, MaxQueue: 100, QueueTimeout: 10 * time.Second}, nil)
	var cur, peak atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 200 {
				if err := b.Acquire(context.Background()); err != nil {
					t.Error(err)
					return
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				cur.Add(-1)
				b.Release()
			}
		})
	}
	wg.Wait()
	if peak.Load() > 3 {
		t.Fatalf("peak holders %d > max concurrent 3", peak.Load())
	}
	if b.InUse() != 0 || b.Waiting() != 0 {
		t.Fatalf("in use %d waiting %d at the end", b.InUse(), b.Waiting())
	}
}

func TestBulkheadConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {MaxConcurrent: 1, MaxQueue: -1}, {MaxConcurrent: 1, MaxQueue: 1}} {
		if _, err := New(cfg, nil); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want invalid argument", cfg, err)
		}
	}
}

func TestBulkheadFastPathDoesNotAllocate(t *testing.T) {
	b := mustNew(t, Config{MaxConcurrent: 4}, nil)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = b.Acquire(ctx); b.Release() }); n != 0 {
		t.Fatalf("acquire/release allocates %v", n)
	}
}
