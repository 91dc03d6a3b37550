package governance

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/breaker"
	"github.com/outrig/outrig/governance/clock"
)

var errDown = fmt.Errorf("redis: %w", errkind.ErrUnavailable)

func chainOf(t *testing.T, deps Deps, p *configv1.Policy) *Chain {
	t.Helper()
	p.Targets = []*configv1.PolicyTarget{tgt("state", "orders", "Get", "")}
	return compile(t, nil, deps, p).Lookup("state", "orders", "Get", "")
}

// Under a complete outage, retries stay within the budget whatever
// max_attempts says.
func TestRetryBudgetBoundsAttemptsUnderTotalFailure(t *testing.T) {
	tests := []struct {
		ratio, minPerSec float64
		calls            int
		wantMaxAttempts  int
	}{
		{0.2, 10, 1000, 1000 + 200 + 100}, // 10/s × 10s window
		{0.1, 1, 500, 500 + 50 + 10},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.ratio, tc.minPerSec), func(t *testing.T) {
			rec := newRecorder()
			c := chainOf(t, Deps{Clock: clock.NewFake(), Observer: rec}, &configv1.Policy{Name: "r",
				Retry: &configv1.Retry{MaxAttempts: 5, InitialBackoff: dur(0), BudgetRatio: tc.ratio, MinRetriesPerSecond: tc.minPerSec}})
			var attempts int
			for range tc.calls {
				err := c.Do(context.Background(), func(context.Context) error { attempts++; return errDown })
				if !errors.Is(err, errkind.ErrUnavailable) {
					t.Fatalf("Do: %v", err)
				}
			}
			if attempts > tc.wantMaxAttempts || attempts < tc.calls+1 {
				t.Fatalf("%d calls made %d attempts, want at most %d (5 each would be %d)", tc.calls, attempts, tc.wantMaxAttempts, 5*tc.calls)
			}
			if rec.count(c.Labels(), "retry_budget_exhausted") == 0 {
				t.Fatal("budget exhaustion not reported")
			}
		})
	}
}

func TestRetryOnlyRetryableCodes(t *testing.T) {
	tests := []struct {
		name     string
		codes    []string
		err      error
		attempts int
	}{
		{"unavailable retried by default", nil, errDown, 3},
		{"grpc unavailable retried", nil, status.Error(codes.Unavailable, "x"), 3},
		{"not found not retried", nil, fmt.Errorf("get: %w", errkind.ErrNotFound), 1},
		{"internal not retried by default", nil, status.Error(codes.Internal, "x"), 1},
		{"internal retried when listed", []string{"INTERNAL"}, status.Error(codes.Internal, "x"), 3},
		{"deadline retried when listed", []string{"deadline_exceeded"}, fmt.Errorf("x: %w", errkind.ErrDeadlineExceeded), 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := chainOf(t, Deps{Clock: clock.NewFake()}, &configv1.Policy{Name: "r",
				Retry: &configv1.Retry{MaxAttempts: 3, InitialBackoff: dur(0), RetryableCodes: tc.codes}})
			n := 0
			err := c.Do(context.Background(), func(context.Context) error { n++; return tc.err })
			if n != tc.attempts {
				t.Fatalf("%d attempts, want %d", n, tc.attempts)
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("Do returned %v, want the last attempt's error", err)
			}
		})
	}
	c := chainOf(t, Deps{Clock: clock.NewFake()}, &configv1.Policy{Name: "r", Retry: &configv1.Retry{MaxAttempts: 3, InitialBackoff: dur(0)}})
	n := 0
	if err := c.Do(context.Background(), func(context.Context) error {
		if n++; n < 2 {
			return errDown
		}
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("recovering op: err %v after %d attempts, want success on the 2nd", err, n)
	}
}

func TestRetryWaitsBackoff(t *testing.T) {
	clk := clock.NewFake()
	c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "r",
		Retry: &configv1.Retry{MaxAttempts: 3, InitialBackoff: dur(100 * time.Millisecond), Multiplier: 2, Jitter: 0.000001}})
	var n atomic.Int32
	done := make(chan error, 1)
	go func() { done <- c.Do(context.Background(), func(context.Context) error { n.Add(1); return errDown }) }()
	if !clk.WaitTimers(1) || n.Load() != 1 {
		t.Fatal("first backoff not started")
	}
	clk.Advance(99 * time.Millisecond)
	if n.Load() != 1 {
		t.Fatal("retried before the backoff")
	}
	clk.Advance(2 * time.Millisecond) // the jitter is tiny but not zero
	if !clk.WaitTimers(1) || n.Load() != 2 {
		t.Fatalf("second backoff not started (attempts %d)", n.Load())
	}
	clk.Advance(197 * time.Millisecond) // the second backoff is 2× the first
	if n.Load() != 2 {
		t.Fatal("second retry before its backoff")
	}
	clk.Advance(4 * time.Millisecond)
	if err := <-done; !errors.Is(err, errkind.ErrUnavailable) || n.Load() != 3 {
		t.Fatalf("Do: %v after %d attempts", err, n.Load())
	}
}

// The timeout is per call: it bounds all attempts together.
func TestTimeoutIsPerCall(t *testing.T) {
	c := chainOf(t, Deps{}, &configv1.Policy{Name: "t", Timeout: &configv1.Timeout{Duration: dur(50 * time.Millisecond)},
		Retry: &configv1.Retry{MaxAttempts: 100, InitialBackoff: dur(5 * time.Millisecond)}})
	start := time.Now()
	attempts := 0
	err := c.Do(context.Background(), func(ctx context.Context) error {
		attempts++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			return errDown
		}
	})
	el := time.Since(start)
	if !errors.Is(err, errkind.ErrDeadlineExceeded) {
		t.Fatalf("Do: %v, want deadline exceeded", err)
	}
	if el > 500*time.Millisecond || attempts > 3 {
		t.Fatalf("took %v and %d attempts; the 50ms timeout should bound the whole call", el, attempts)
	}
	// A caller's own cancellation is not reported as the policy timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Do(ctx, func(ctx context.Context) error { return ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call: %v", err)
	}
}

func TestRejectionsCarryKindAndRetryAfter(t *testing.T) {
	ctx := context.Background()
	t.Run("rate limit", func(t *testing.T) {
		c := chainOf(t, Deps{Clock: clock.NewFake()}, &configv1.Policy{Name: "p", RateLimit: &configv1.RateLimit{Rate: 10, Burst: 1}})
		if err := c.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatal(err)
		}
		err := c.Do(ctx, func(context.Context) error { t.Fatal("op ran"); return nil })
		ra, ok := errkind.RetryAfter(err)
		if !errors.Is(err, errkind.ErrResourceExhausted) || !ok || ra != 100*time.Millisecond {
			t.Fatalf("%v (retry after %v %v), want resource exhausted, retry after 100ms", err, ra, ok)
		}
	})
	t.Run("breaker", func(t *testing.T) {
		clk := clock.NewFake()
		c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "p", CircuitBreaker: &configv1.CircuitBreaker{
			MinCalls: 2, FailureRateThreshold: 0.5, SleepWindow: dur(5 * time.Second), HalfOpenProbes: 1}})
		for range 2 {
			c.Do(ctx, func(context.Context) error { return errDown })
		}
		clk.Advance(time.Second)
		err := c.Do(ctx, func(context.Context) error { t.Fatal("op ran"); return nil })
		ra, _ := errkind.RetryAfter(err)
		if !errors.Is(err, errkind.ErrUnavailable) || ra != 4*time.Second {
			t.Fatalf("%v (retry after %v), want unavailable, retry after 4s", err, ra)
		}
		clk.Advance(4 * time.Second)
		if err := c.Do(ctx, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("probe: %v", err)
		}
		if s, _ := c.BreakerState(); s != breaker.Closed {
			t.Fatalf("breaker %v after a successful probe", s)
		}
	})
	t.Run("breaker ignores client errors", func(t *testing.T) {
		c := chainOf(t, Deps{Clock: clock.NewFake()}, &configv1.Policy{Name: "p", CircuitBreaker: &configv1.CircuitBreaker{MinCalls: 2, FailureRateThreshold: 0.5}})
		for range 10 {
			c.Do(ctx, func(context.Context) error { return fmt.Errorf("get: %w", errkind.ErrNotFound) })
			c.Do(ctx, func(context.Context) error { return status.Error(codes.InvalidArgument, "bad") })
		}
		if s, _ := c.BreakerState(); s != breaker.Closed {
			t.Fatalf("breaker %v after NOT_FOUND/INVALID_ARGUMENT only", s)
		}
	})
	t.Run("bulkhead queue timeout", func(t *testing.T) {
		clk := clock.NewFake()
		c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "p", Bulkhead: &configv1.Bulkhead{MaxConcurrent: 1, MaxQueue: 1, QueueTimeout: dur(time.Second)}})
		tok, err := c.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := make(chan error, 1)
		go func() { res <- c.Do(ctx, func(context.Context) error { return nil }) }()
		if !clk.WaitTimers(1) {
			t.Fatal("not queued")
		}
		if _, err := c.Enter(ctx); !errors.Is(err, errkind.ErrResourceExhausted) || !errors.Is(err, c.errBulkheadFull) {
			t.Fatalf("with full queue: %v, want bulkhead full", err)
		}
		clk.Advance(time.Second)
		if err := <-res; !errors.Is(err, errkind.ErrResourceExhausted) || !errors.Is(err, c.errBulkheadWait) {
			t.Fatalf("queued call: %v, want bulkhead queue timeout (resource exhausted)", err)
		}
		tok.Exit(nil)
	})
	t.Run("drop", func(t *testing.T) {
		c := chainOf(t, Deps{}, &configv1.Policy{Name: "p", RandomDrop: &configv1.RandomDrop{Fraction: 1}})
		if err := c.Do(ctx, func(context.Context) error { return nil }); !errors.Is(err, errkind.ErrUnavailable) {
			t.Fatalf("%v, want unavailable", err)
		}
	})
	t.Run("adaptive", func(t *testing.T) {
		c := chainOf(t, Deps{}, &configv1.Policy{Name: "p", AdaptiveLimit: &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 1}})
		tok, err := c.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Enter(ctx); !errors.Is(err, errkind.ErrUnavailable) {
			t.Fatalf("%v, want unavailable (shed)", err)
		}
		tok.Exit(nil)
		if l, ok := c.AdaptiveLimit(); !ok || l != 1 {
			t.Fatalf("AdaptiveLimit %v %v", l, ok)
		}
	})
}

// A stage that rejects gives back what earlier stages took.
func TestRejectionReleasesEarlierStages(t *testing.T) {
	clk := clock.NewFake()
	c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "p",
		Bulkhead:      &configv1.Bulkhead{MaxConcurrent: 1},
		AdaptiveLimit: &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 1, MaxLimit: 1},
	})
	ctx := context.Background()
	tok, err := c.Enter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok.Exit(nil)
	// Hold the adaptive slot through a token of a second chain state? Take it directly.
	if !c.adaptive.Acquire(0) {
		t.Fatal("adaptive slot not free")
	}
	if _, err := c.Enter(ctx); err == nil {
		t.Fatal("admitted over the adaptive limit")
	}
	c.adaptive.Cancel()
	if _, err := c.Enter(ctx); err != nil {
		t.Fatalf("bulkhead slot leaked by the adaptive rejection: %v", err)
	}
}

func TestPanickingOpFreesItsSlot(t *testing.T) {
	c := chainOf(t, Deps{}, &configv1.Policy{Name: "p", Bulkhead: &configv1.Bulkhead{MaxConcurrent: 1}})
	func() {
		defer func() { recover() }()
		c.Do(context.Background(), func(context.Context) error { panic("boom") })
	}()
	if err := c.Do(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("after a panicking op: %v", err)
	}
}

func TestObserverSeesDecisions(t *testing.T) {
	rec := newRecorder()
	clk := clock.NewFake()
	c := chainOf(t, Deps{Clock: clk, Observer: rec}, &configv1.Policy{Name: "p",
		RateLimit:      &configv1.RateLimit{Rate: 1, Burst: 2},
		CircuitBreaker: &configv1.CircuitBreaker{MinCalls: 1, FailureRateThreshold: 0.3},
		AdaptiveLimit:  &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 7}})
	ctx := context.Background()
	c.Do(ctx, func(context.Context) error { return nil })
	c.Do(ctx, func(context.Context) error { return fmt.Errorf("get: %w", errkind.ErrNotFound) })
	c.Do(ctx, func(context.Context) error { return nil })
	l := Labels{Kind: "state", Name: "orders", Method: "Get", Policy: "p"}
	for what, want := range map[string]int{"allowed": 2, "done_success": 2, "rate_limited": 1} {
		if got := rec.count(l, what); got != want {
			t.Errorf("%s: %d, want %d", what, got, want)
		}
	}
	clk.Advance(time.Second)
	c.Do(ctx, func(context.Context) error { return errDown })
	if rec.count(l, "done_failure") != 1 || rec.gauge(l, GaugeBreakerState) != float64(breaker.Open) {
		t.Errorf("failure / breaker open not reported: %v %v", rec.counts[l], rec.gauges[l])
	}
	if rec.gauge(l, GaugeAdaptiveLimit) != 7 {
		t.Errorf("adaptive limit gauge %v, want 7", rec.gauge(l, GaugeAdaptiveLimit))
	}
}

func TestLoadBalancerConfig(t *testing.T) {
	c := chainOf(t, Deps{}, &configv1.Policy{Name: "p", LoadBalancer: &configv1.LoadBalancer{Policy: "hrw", HashKey: "user",
		OutlierDetection: &configv1.OutlierDetection{ConsecutiveFailures: 3}}})
	cfg, ok := c.LoadBalancer()
	if !ok || cfg.Policy != "hrw" || cfg.HashKey != "user" || cfg.Outlier == nil || cfg.Outlier.ConsecutiveFailures != 3 || cfg.Outlier.BaseEjectionTime != 30*time.Second {
		t.Fatalf("LoadBalancer() = %+v %v", cfg, ok)
	}
}

// The admitted path of a chain with every local stage allocates nothing.
func TestAdmittedPathDoesNotAllocate(t *testing.T) {
	c := chainOf(t, Deps{CPU: nil}, &configv1.Policy{Name: "p",
		RateLimit:      &configv1.RateLimit{Rate: 1e9},
		CircuitBreaker: &configv1.CircuitBreaker{FailureRateThreshold: 0.5},
		Bulkhead:       &configv1.Bulkhead{MaxConcurrent: 100},
		AdaptiveLimit:  &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 100},
		RandomDrop:     &configv1.RandomDrop{K: 2},
	})
	ctx := context.Background()
	op := func(context.Context) error { return nil }
	if n := testing.AllocsPerRun(1000, func() {
		tok, err := c.Enter(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tok.Exit(nil)
	}); n != 0 {
		t.Errorf("Enter/Exit allocates %v", n)
	}
	if n := testing.AllocsPerRun(1000, func() { c.Do(ctx, op) }); n != 0 {
		t.Errorf("Do allocates %v", n)
	}
}
