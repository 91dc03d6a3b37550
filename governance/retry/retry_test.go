package retry

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outrig/outrig/errkind"
)

func TestBackoffGrowsAndIsCappedWithinJitter(t *testing.T) {
	p, err := New(Config{MaxAttempts: 10, InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, Multiplier: 2, Jitter: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	bases := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, base := range bases {
		base *= time.Millisecond
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		seenLow, seenHigh := false, false
		for range 1000 {
			d := p.Backoff(i + 1)
			if d < lo || d > hi {
				t.Fatalf("retry %d: backoff %v outside [%v, %v]", i+1, d, lo, hi)
			}
			seenLow = seenLow || d < base*95/100
			seenHigh = seenHigh || d > base*105/100
		}
		if !seenLow || !seenHigh {
			t.Fatalf("retry %d: backoff not spread by jitter", i+1)
		}
	}
}

func TestZeroInitialBackoffRetriesAtOnce(t *testing.T) {
	p, _ := New(Config{MaxAttempts: 3})
	if d := p.Backoff(2); d != 0 {
		t.Fatalf("backoff %v, want 0", d)
	}
}

func TestRetryableCodes(t *testing.T) {
	p, _ := New(Config{MaxAttempts: 2})
	if !p.Retryable(codes.Unavailable) || p.Retryable(codes.Internal) || p.Retryable(codes.NotFound) {
		t.Fatal("default retryable codes are not exactly UNAVAILABLE")
	}
	p, _ = New(Config{MaxAttempts: 2, Retryable: []codes.Code{codes.DeadlineExceeded, codes.Aborted}})
	if !p.Retryable(codes.DeadlineExceeded) || !p.Retryable(codes.Aborted) || p.Retryable(codes.Unavailable) {
		t.Fatal("configured retryable codes not honoured")
	}
}

func TestBudgetBoundsRetries(t *testing.T) {
	tests := []struct {
		name        string
		ratio, min  float64
		calls       int
		wantRetries int
	}{
		{"ratio only", 0.2, 0.0001, 1000, 200},
		{"ratio plus minimum", 0.2, 10, 1000, 300}, // 0.2×1000 + 10/s × 10s
		{"minimum for low traffic", 0.2, 1, 5, 11}, // 0.2×5 + 1/s × 10s
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(Config{MaxAttempts: 5, BudgetRatio: tc.ratio, MinRetriesPerSecond: tc.min, BudgetWindow: 10 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			retries := 0
			for range tc.calls {
				p.Call(0)
				for range 4 {
					if p.TryRetry(0) {
						retries++
					}
				}
			}
			if retries != tc.wantRetries {
				t.Fatalf("granted %d retries for %d calls, want %d", retries, tc.calls, tc.wantRetries)
			}
		})
	}
}

func TestBudgetRefillsAsWindowSlides(t *testing.T) {
	p, _ := New(Config{MaxAttempts: 5, BudgetRatio: 0.5, MinRetriesPerSecond: 0.0001, BudgetWindow: 10 * time.Second})
	for range 10 {
		p.Call(0)
	}
	n := 0
	for p.TryRetry(0) {
		n++
	}
	if n != 5 {
		t.Fatalf("granted %d, want 5", n)
	}
	later := int64(11 * time.Second)
	if p.TryRetry(later) {
		t.Fatal("retry granted with no calls in the window")
	}
	for range 4 {
		p.Call(later)
	}
	if !p.TryRetry(later) || !p.TryRetry(later) || p.TryRetry(later) {
		t.Fatal("budget not recomputed from the calls in the new window")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{MaxAttempts: 2, InitialBackoff: -1},
		{MaxAttempts: 2, InitialBackoff: time.Second, MaxBackoff: time.Millisecond},
		{MaxAttempts: 2, Multiplier: 0.5},
		{MaxAttempts: 2, Jitter: 2},
		{MaxAttempts: 2, BudgetRatio: -1},
	} {
		if _, err := New(cfg); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("New(%+v) = %v, want invalid argument", cfg, err)
		}
	}
}
