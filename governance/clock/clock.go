// Package clock is the time source of the governance policies.
//
// Policies read time as monotonic nanoseconds (an int64) so that the per-call
// path does one cheap read and no allocation; they wait (bulkhead queue,
// retry backoff) through timers obtained from the same Clock, so tests drive
// both with a Fake.
package clock

import "time"

// Clock gives monotonic time and timers.
//
// Implementations are safe for concurrent use. Now is on the per-call hot
// path: it must not allocate or block. NewTimer is used only on waiting
// paths and may allocate.
type Clock interface {
	// Now returns monotonic nanoseconds since a fixed origin. The origin is
	// the same for every Clock of one implementation in one process, so state
	// built with one value of the clock stays valid with another.
	Now() int64
	// NewTimer returns a started timer that delivers once on C after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer from a Clock.
type Timer interface {
	// C delivers the time once when the timer fires.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it did so.
	Stop() bool
}

// processStart is the origin of Real. It is a plain value, read only.
var processStart = time.Now()

// Real is the process's monotonic clock. The zero value is ready to use.
type Real struct{}

// Now returns monotonic nanoseconds since the package was loaded.
func (Real) Now() int64 { return int64(time.Since(processStart)) }

// NewTimer wraps time.NewTimer.
func (Real) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
