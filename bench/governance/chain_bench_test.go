package governance

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker"
	"golang.org/x/time/rate"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/governance/adaptive"
	"github.com/outrig/outrig/governance/balancer"
	"github.com/outrig/outrig/governance/metrics"
)

// allowing is a policy whose every stage admits the benchmark's calls:
// a huge rate limit, a breaker that never sees a failure, a wide bulkhead
// and an adaptive limit far above the concurrency of the benchmark.
func allowing(algorithm string) *configv1.Policy {
	return &configv1.Policy{
		Name:           "bench",
		Targets:        []*configv1.PolicyTarget{{Kind: "state", Name: "orders", Method: "Get"}},
		RateLimit:      &configv1.RateLimit{Rate: 1e9}, // burst defaults to the rate: a 1s-deep bucket
		CircuitBreaker: &configv1.CircuitBreaker{FailureRateThreshold: 0.5},
		Bulkhead:       &configv1.Bulkhead{MaxConcurrent: 1000},
		AdaptiveLimit:  &configv1.AdaptiveLimit{Algorithm: algorithm, InitialLimit: 1000, MaxLimit: 1000},
	}
}

func chain(b *testing.B, p *configv1.Policy, obs governance.Observer) (*governance.Table, *governance.Chain) {
	b.Helper()
	// BBR gates on CPU usage, and this shared machine is often above the
	// threshold, where BBR rightly sheds calls whose RTT is below a
	// microsecond; measure its admitted path with a cool CPU.
	cool := adaptive.CPUFunc(func(int64) float64 { return 0.1 })
	tb, err := governance.Compile([]*configv1.Policy{p}, nil, governance.Deps{Observer: obs, CPU: cool})
	if err != nil {
		b.Fatal(err)
	}
	return tb, tb.Lookup("state", "orders", "Get", "checkout")
}

func op(context.Context) error { return nil }

// benchChain measures Enter/Exit and Do, serial and parallel.
func benchChain(b *testing.B, c *governance.Chain) {
	ctx := context.Background()
	b.Run("EnterExit/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			t, err := c.Enter(ctx)
			if err != nil {
				b.Fatal(err)
			}
			t.Exit(nil)
		}
	})
	b.Run("EnterExit/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				t, err := c.Enter(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				t.Exit(nil)
			}
		})
	})
	b.Run("Do/serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := c.Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Do/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := c.Do(ctx, op); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkChain: rate limit + breaker + bulkhead + gradient2, no metrics.
func BenchmarkChain(b *testing.B) {
	_, c := chain(b, allowing("gradient2"), nil)
	benchChain(b, c)
}

// BenchmarkChainBBR: the same with the BBR limit (CPU below its threshold).
func BenchmarkChainBBR(b *testing.B) {
	_, c := chain(b, allowing("bbr"), nil)
	benchChain(b, c)
}

// BenchmarkChainPrometheus: the same chain reporting to Prometheus (a
// counter and a histogram per call).
func BenchmarkChainPrometheus(b *testing.B) {
	obs, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	_, c := chain(b, allowing("gradient2"), obs)
	benchChain(b, c)
}

// BenchmarkNoop: a call no policy matches.
func BenchmarkNoop(b *testing.B) {
	tb, _ := chain(b, allowing("gradient2"), nil)
	c := tb.Lookup("state", "carts", "Get", "")
	benchChain(b, c)
}

// BenchmarkLookup: Table.Lookup of a cached key.
func BenchmarkLookup(b *testing.B) {
	tb, _ := chain(b, allowing("gradient2"), nil)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if tb.Lookup("state", "orders", "Get", "checkout").Noop() {
				b.Fatal("no policy")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tb.Lookup("state", "orders", "Get", "checkout").Noop() {
					b.Error("no policy")
					return
				}
			}
		})
	})
}

// BenchmarkLookupAndDo: the sidecar's whole per-call path, table lookup
// included.
func BenchmarkLookupAndDo(b *testing.B) {
	tb, _ := chain(b, allowing("gradient2"), nil)
	ctx := context.Background()
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := tb.Lookup("state", "orders", "Get", "checkout").Do(ctx, op); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := tb.Lookup("state", "orders", "Get", "checkout").Do(ctx, op); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkBaselineXTimeRate: golang.org/x/time/rate Limiter.Allow.
func BenchmarkBaselineXTimeRate(b *testing.B) {
	l := rate.NewLimiter(rate.Limit(1e9), 1e9)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !l.Allow() {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !l.Allow() {
					b.Error("rejected")
					return
				}
			}
		})
	})
}

// BenchmarkBaselineGobreaker: sony/gobreaker Execute with a trivial func.
func BenchmarkBaselineGobreaker(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker(gobreaker.Settings{Name: "bench", Interval: 10 * time.Second})
	fn := func() (any, error) { return nil, nil }
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cb.Execute(fn); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := cb.Execute(fn); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkPicker: balancer Pick + done for 16 endpoints.
func BenchmarkPicker(b *testing.B) {
	eps := make([]balancer.Endpoint, 16)
	for i := range eps {
		eps[i] = balancer.Endpoint{ID: string(rune('a' + i)), Address: "10.0.0.1:1"}
	}
	for _, pol := range []balancer.Policy{balancer.RoundRobin, balancer.P2C, balancer.HRW, balancer.RingHash} {
		p, err := balancer.New(balancer.Config{Policy: pol, Outlier: &balancer.Outlier{}}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Update(eps); err != nil {
			b.Fatal(err)
		}
		b.Run(string(pol)+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, done, _ := p.Pick("user-42")
				done(nil)
			}
		})
		b.Run(string(pol)+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, done, _ := p.Pick("user-42")
					done(nil)
				}
			})
		})
	}
}
