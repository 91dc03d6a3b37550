package governance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
)

// Many goroutines through every stage at once: no slot leaks, the bulkhead
// limit holds, and every call ends either admitted or with an errkind kind.
func TestChainUnderConcurrency(t *testing.T) {
	c := chainOf(t, Deps{}, &configv1.Policy{Name: "p",
		Retry:          &configv1.Retry{MaxAttempts: 3, InitialBackoff: dur(100 * time.Microsecond)},
		RateLimit:      &configv1.RateLimit{Rate: 1e6, Burst: 1000},
		CircuitBreaker: &configv1.CircuitBreaker{MinCalls: 50, FailureRateThreshold: 0.9, SleepWindow: dur(time.Millisecond)},
		Bulkhead:       &configv1.Bulkhead{MaxConcurrent: 4, MaxQueue: 8, QueueTimeout: dur(5 * time.Millisecond)},
		AdaptiveLimit:  &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 3, MaxLimit: 3},
		RandomDrop:     &configv1.RandomDrop{Fraction: 0.01, K: 2},
	})
	var mu sync.Mutex
	inside, peak := 0, 0
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				err := c.Do(context.Background(), func(context.Context) error {
					mu.Lock()
					inside++
					peak = max(peak, inside)
					mu.Unlock()
					if rand.IntN(4) == 0 {
						time.Sleep(50 * time.Microsecond)
					}
					mu.Lock()
					inside--
					mu.Unlock()
					if (g+i)%5 == 0 {
						return fmt.Errorf("x: %w", errkind.ErrUnavailable)
					}
					return nil
				})
				if err != nil && !errors.Is(err, errkind.ErrUnavailable) && !errors.Is(err, errkind.ErrResourceExhausted) {
					t.Errorf("unexpected error kind: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("%d ops ran at once, want at most min(bulkhead 4, adaptive 3)", peak)
	}
	if n := c.bulkhead.InUse(); n != 0 {
		t.Fatalf("bulkhead slots in use after all calls: %d", n)
	}
	if n := c.bulkhead.Waiting(); n != 0 {
		t.Fatalf("bulkhead waiters left: %d", n)
	}
	if n := c.adaptive.Inflight(); n != 0 {
		t.Fatalf("adaptive in flight after all calls: %d", n)
	}
}
