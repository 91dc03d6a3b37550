package governance

import (
	"context"
	"errors"
	"fmt"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/failure"
)

// Do runs op under the chain: the policy timeout (one deadline for the
// whole call, attempts and backoffs included), retries (bounded attempts,
// exponential backoff with jitter, only on the policy's retryable codes,
// within the retry budget), and for each attempt the admission of Enter.
// op must honour its context. Rejections by the chain are returned at once,
// never retried. When the policy timeout ends the call, the error wraps
// errkind.ErrDeadlineExceeded and quotes the last attempt's error. Without
// timeout and retry, an admitted call allocates nothing beyond what op does.
func (c *Chain) Do(ctx context.Context, op func(ctx context.Context) error) error {
	if c.noop {
		return op(ctx)
	}
	if c.timeout <= 0 {
		return c.run(ctx, op)
	}
	tctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := c.run(tctx, op)
	cancel()
	if err != nil && ctx.Err() == nil && errors.Is(tctx.Err(), context.DeadlineExceeded) {
		c.obs.Decision(DecisionTimedOut)
		return fmt.Errorf("%s: timed out after %v: %w (last error: %v)", c.prefix, c.timeout, errkind.ErrDeadlineExceeded, err)
	}
	return err
}

func (c *Chain) run(ctx context.Context, op func(ctx context.Context) error) error {
	if c.retry == nil {
		_, err := c.once(ctx, op)
		return err
	}
	c.retry.Call(c.clk.Now())
	for attempt := 1; ; attempt++ {
		rejected, err := c.once(ctx, op)
		if err == nil || rejected || attempt >= c.retry.MaxAttempts() || ctx.Err() != nil {
			return err
		}
		if !c.retry.Retryable(failure.Code(err)) {
			return err
		}
		if !c.retry.TryRetry(c.clk.Now()) {
			c.obs.Decision(DecisionRetryBudgetExhausted)
			return err
		}
		c.obs.Decision(DecisionRetried)
		if d := c.retry.Backoff(attempt); d > 0 {
			t := c.clk.NewTimer(d)
			select {
			case <-t.C():
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
	}
}

// once runs one attempt; rejected reports that the chain refused it.
func (c *Chain) once(ctx context.Context, op func(ctx context.Context) error) (rejected bool, err error) {
	t, err := c.Enter(ctx)
	if err != nil {
		return true, err
	}
	exited := false
	defer func() {
		if !exited { // op panicked: free the slot, count a failure, keep panicking
			t.Exit(errPanicked)
		}
	}()
	err = op(ctx)
	exited = true
	t.Exit(err)
	return false, err
}
