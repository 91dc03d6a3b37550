package registry

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
)

var benchSizes = []int{1_000, 10_000, 100_000}

const benchTTL = 10 * time.Second

// benchRegistry holds n leases spread over 1000 app ids, registered step
// apart so that their deadlines are distinct.
func benchRegistry(b *testing.B, n int, step time.Duration) (*Registry, *fakeClock, []string) {
	b.Helper()
	clk := newFakeClock()
	r, err := New(Options{Clock: clk, DefaultTTL: benchTTL, Logger: slog.New(slog.DiscardHandler),
		OnChange: func(map[string]*configv1.Endpoint, []string) {}})
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprint("inst-", i)
		if _, err := r.Register(appOf(i), &configv1.Endpoint{InstanceId: ids[i], Address: "10.0.0.1:80"}, 0); err != nil {
			b.Fatal(err)
		}
		clk.Advance(step)
	}
	r.Flush()
	return r, clk, ids
}

var appIDs = func() []string {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprint("app-", i)
	}
	return ids
}()

func appOf(i int) string { return appIDs[i%1000] }

// BenchmarkRenew: one heartbeat (map lookup + move to the tail).
func BenchmarkRenew(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("instances=", n), func(b *testing.B) {
			r, clk, ids := benchRegistry(b, n, time.Microsecond)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % n
				clk.Advance(time.Nanosecond)
				if _, err := r.Renew(appOf(k), ids[k]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExpire: steady state at n leases; each op lets the oldest lease
// expire in a Check and registers a replacement. The cost per op must not
// grow with n.
func BenchmarkExpire(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint("instances=", n), func(b *testing.B) {
			// Leases are step apart and each op advances the clock by step,
			// so exactly one lease becomes overdue per op, forever.
			step := benchTTL / time.Duration(n)
			r, clk, ids := benchRegistry(b, n, step) // the clock is now at lease 0's deadline
			ep := &configv1.Endpoint{Address: "10.0.0.1:80"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := r.Check(); got != 1 {
					b.Fatalf("op %d expired %d, want 1", i, got)
				}
				k := i % n
				ep.InstanceId = ids[k]
				if _, err := r.Register(appOf(k), ep, 0); err != nil {
					b.Fatal(err)
				}
				clk.Advance(step)
			}
		})
	}
}
