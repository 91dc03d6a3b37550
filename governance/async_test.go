package governance

import (
	"context"
	"errors"
	"testing"
	"time"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/breaker"
	"github.com/outrig/outrig/governance/clock"
)

// Async says which chains a caller may run as Enter … Exit on another
// goroutine: those whose Enter never waits and that add no retries or
// timeout of their own (only Do applies those).
func TestChainAsyncOnlyWhenEnterAndExitSuffice(t *testing.T) {
	none := compile(t, nil, Deps{}).Lookup("state", "orders", "Get", "")
	if !none.Async() {
		t.Error("the no-policy chain: Async false")
	}
	for _, tc := range []struct {
		name string
		p    *configv1.Policy
		want bool
	}{
		{"rate limit", &configv1.Policy{RateLimit: &configv1.RateLimit{Rate: 10, Burst: 1}}, true},
		{"breaker", &configv1.Policy{CircuitBreaker: &configv1.CircuitBreaker{MinCalls: 2, FailureRateThreshold: 0.5}}, true},
		{"adaptive limit", &configv1.Policy{AdaptiveLimit: &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 1}}, true},
		{"random drop", &configv1.Policy{RandomDrop: &configv1.RandomDrop{Fraction: 0.5}}, true},
		{"retry", &configv1.Policy{Retry: &configv1.Retry{MaxAttempts: 3}}, false},
		{"timeout", &configv1.Policy{Timeout: &configv1.Timeout{Duration: dur(time.Second)}}, false},
		{"bulkhead", &configv1.Policy{Bulkhead: &configv1.Bulkhead{MaxConcurrent: 4}}, false},
	} {
		tc.p.Name = "p"
		if got := chainOf(t, Deps{Clock: clock.NewFake()}, tc.p).Async(); got != tc.want {
			t.Errorf("%s: Async %v, want %v", tc.name, got, tc.want)
		}
	}
}

// An asynchronous caller's Exit, from the goroutine that completed the
// operation, feeds the breaker as Do would: failures open it, Enter then
// rejects.
func TestAsyncExitFromAnotherGoroutineFeedsTheBreaker(t *testing.T) {
	clk := clock.NewFake()
	c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "p", CircuitBreaker: &configv1.CircuitBreaker{
		MinCalls: 2, FailureRateThreshold: 0.5, SleepWindow: dur(5 * time.Second), HalfOpenProbes: 1}})
	if !c.Async() {
		t.Fatal("breaker chain not Async")
	}
	for range 2 {
		tok, err := c.Enter(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { tok.Exit(errDown); close(done) }()
		<-done
	}
	if s, _ := c.BreakerState(); s != breaker.Open {
		t.Fatalf("breaker %v after two failed asynchronous calls, want open", s)
	}
	if _, err := c.Enter(context.Background()); !errors.Is(err, errkind.ErrUnavailable) {
		t.Fatalf("Enter with the breaker open: %v, want unavailable", err)
	}
}
