package governance

import (
	"context"
	"testing"
	"time"

	configv1 "github.com/outrig/outrig/api/gen/outrig/config/v1"
	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
)

// The hint crosses the wire in whole milliseconds: it is rounded up, and a
// rejection never says "retry after 0".
func TestRetryAfterRoundsUpToMilliseconds(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake()
	c := chainOf(t, Deps{Clock: clk}, &configv1.Policy{Name: "p", RateLimit: &configv1.RateLimit{Rate: 3, Burst: 1}})
	if err := c.Do(ctx, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, c2 := range []struct {
		advance, want time.Duration
	}{{0, 334 * time.Millisecond}, {333 * time.Millisecond, time.Millisecond}} {
		clk.Advance(c2.advance)
		err := c.Do(ctx, func(context.Context) error { t.Fatal("op ran"); return nil })
		if ra, ok := errkind.RetryAfter(err); !ok || ra != c2.want {
			t.Fatalf("after %v: retry after %v (%v), want %v", c2.advance, ra, err, c2.want)
		}
	}
}
