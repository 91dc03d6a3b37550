// Package deadline bounds component calls by the caller's deadline, for
// components that do not watch their context.
package deadline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/outrig/outrig/errkind"
)

// Answer margins: how long before the caller's deadline a component call
// that has not returned is answered UNAVAILABLE, so that the answer reaches
// the caller before its deadline passes (a tenth of the time left, between
// minMargin and maxMargin).
const (
	minMargin = 2 * time.Millisecond
	maxMargin = 250 * time.Millisecond
)

// Within runs call, a component call, but does not wait for it past
// ctx: some components do not watch their context (components-contrib's
// Kafka producer retries for seconds against a broker that went away, its
// RocketMQ producer sends with a timeout of its own). When ctx has a
// deadline and call has not returned shortly before it, the result is an
// UNAVAILABLE error — the backend did not answer in time, as a proxy's
// gateway timeout maps to UNAVAILABLE in gRPC — and call's own result is
// discarded when it comes (an event it publishes late is still delivered:
// delivery is at least once). When ctx is cancelled first, the result is
// ctx's error. Without a deadline call runs on the caller's goroutine.
func Within[T any](ctx context.Context, what string, call func(context.Context) (T, error)) (T, error) {
	var zero T
	deadline, ok := ctx.Deadline()
	if !ok {
		return call(ctx)
	}
	left := time.Until(deadline)
	margin := min(max(left/10, minMargin), maxMargin)
	if left <= margin {
		return zero, fmt.Errorf("%s: no time left before the call's deadline: %w", what, errkind.ErrDeadlineExceeded)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call(ctx)
		done <- result{v, err}
	}()
	timer := time.NewTimer(left - margin)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-timer.C:
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return zero, fmt.Errorf("%s: %w", what, ctx.Err())
		}
		// The timer was late (a busy machine): still the backend's fault.
	}
	return zero, fmt.Errorf("%s: the backend did not answer within the call's deadline (%v): %w", what, left.Round(time.Millisecond), errkind.ErrUnavailable)
}
