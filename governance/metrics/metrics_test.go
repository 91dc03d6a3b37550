package metrics

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/governance/clock"
)

func TestChainDecisionsBecomeSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	p := &configv1.Policy{Name: "orders-limit",
		Targets:        []*configv1.PolicyTarget{{Kind: "state", Name: "orders", Method: "*"}},
		RateLimit:      &configv1.RateLimit{Rate: 1, Burst: 3},
		CircuitBreaker: &configv1.CircuitBreaker{MinCalls: 100, FailureRateThreshold: 0.5},
		AdaptiveLimit:  &configv1.AdaptiveLimit{Algorithm: "gradient2", InitialLimit: 42},
	}
	tb, err := governance.Compile([]*configv1.Policy{p}, nil, governance.Deps{Clock: clock.NewFake(), Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	c := tb.Lookup("state", "orders", "Get", "checkout")
	ctx := context.Background()
	c.Do(ctx, func(context.Context) error { return nil })
	c.Do(ctx, func(context.Context) error { return fmt.Errorf("x: %w", errkind.ErrUnavailable) })
	c.Do(ctx, func(context.Context) error { return fmt.Errorf("x: %w", errkind.ErrNotFound) })
	c.Do(ctx, func(context.Context) error { return nil }) // rate limited

	lv := []string{"state", "orders", "Get", "orders-limit"}
	for decision, want := range map[string]float64{"allowed": 3, "rate_limited": 1} {
		got := testutil.ToFloat64(obs.decisions.WithLabelValues(append(lv, decision)...))
		if got != want {
			t.Errorf("decisions_total{decision=%q} = %v, want %v", decision, got, want)
		}
	}
	for outcome, want := range map[string]uint64{"success": 2, "failure": 1} {
		m := &dtoMetric{}
		if err := m.read(obs.durations.WithLabelValues(append(lv, outcome)...).(prometheus.Metric)); err != nil {
			t.Fatal(err)
		}
		if m.count != want {
			t.Errorf("call_duration_seconds_count{outcome=%q} = %d, want %d", outcome, m.count, want)
		}
	}
	if got := testutil.ToFloat64(obs.gauges.WithLabelValues(append(lv, "adaptive_limit")...)); got != 42 {
		t.Errorf("adaptive_limit gauge %v, want 42", got)
	}
	if got := testutil.ToFloat64(obs.gauges.WithLabelValues(append(lv, "breaker_state")...)); got != 0 {
		t.Errorf("breaker_state gauge %v, want 0 (closed)", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Fatalf("gather: %d series, %v", n, err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("registering twice on one registry succeeded")
	}
}

func TestObserverHotPathDoesNotAllocate(t *testing.T) {
	obs, err := New(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := obs.Chain(governance.Labels{Kind: "state", Name: "orders", Method: "Get", Policy: "p"})
	c.Decision(governance.DecisionAllowed)
	c.Done(governance.Success, 1000)
	if n := testing.AllocsPerRun(1000, func() {
		c.Decision(governance.DecisionAllowed)
		c.Done(governance.Success, 1000)
	}); n != 0 {
		t.Fatalf("allocates %v per call", n)
	}
}
