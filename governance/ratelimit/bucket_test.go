package ratelimit

import (
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outrig/outrig/errkind"
)

func TestBucketAdmitsRateTimesTimePlusBurst(t *testing.T) {
	tests := []struct {
		name     string
		rate     float64
		burst    int
		duration time.Duration
		step     time.Duration // time between attempts
	}{
		{"100/s burst 10 over 10s", 100, 10, 10 * time.Second, time.Millisecond},
		{"3/s burst 1 over 7s", 3, 1, 7 * time.Second, 10 * time.Millisecond},
		{"0.5/s default burst over 60s", 0.5, 0, 60 * time.Second, 100 * time.Millisecond},
		{"50k/s burst 100 over 2s", 50000, 100, 2 * time.Second, 5 * time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := NewBucket(tc.rate, tc.burst)
			if err != nil {
				t.Fatal(err)
			}
			admitted := 0
			for now := int64(0); now <= int64(tc.duration); now += int64(tc.step) {
				// Try several times per step: only the tokens present are taken.
				for range 3 {
					if ok, _ := b.Allow(now); ok {
						admitted++
					}
				}
			}
			want := float64(b.Burst()) + tc.rate*tc.duration.Seconds()
			if math.Abs(float64(admitted)-want) > 1 {
				t.Fatalf("admitted %d, want %.0f ± 1 (burst %d + rate×t)", admitted, want, b.Burst())
			}
		})
	}
}

func TestBucketRetryAfterIsTimeToNextToken(t *testing.T) {
	b, err := NewBucket(10, 2) // a token every 100ms
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if ok, _ := b.Allow(0); !ok {
			t.Fatalf("call %d within burst rejected", i)
		}
	}
	ok, after := b.Allow(int64(30 * time.Millisecond))
	if ok {
		t.Fatal("third call admitted with an empty bucket")
	}
	if after != 70*time.Millisecond {
		t.Fatalf("retry after %v, want 70ms", after)
	}
	if ok, _ := b.Allow(int64(100 * time.Millisecond)); !ok {
		t.Fatal("call after the hinted wait rejected")
	}
}

func TestBucketConcurrentNeverOverAdmits(t *testing.T) {
	b, err := NewBucket(1, 1000) // frozen time: exactly the burst is available
	if err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if ok, _ := b.Allow(int64(time.Hour)); ok {
					admitted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := admitted.Load(); got != 1000 {
		t.Fatalf("admitted %d concurrently, want exactly the burst 1000", got)
	}
}

func TestNewBucketRejectsBadRate(t *testing.T) {
	for _, r := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := NewBucket(r, 1); !errors.Is(err, errkind.ErrInvalidArgument) {
			t.Errorf("NewBucket(%v): err %v, want invalid argument", r, err)
		}
	}
}

func TestBucketAllowDoesNotAllocate(t *testing.T) {
	b, _ := NewBucket(1e9, 0)
	now := int64(0)
	if n := testing.AllocsPerRun(1000, func() { now += 10; b.Allow(now) }); n != 0 {
		t.Fatalf("Allow allocates %v times", n)
	}
}
