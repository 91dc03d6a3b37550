// Package ratelimit limits the rate of calls: a local token bucket that is
// lock-free, and a cluster-wide limiter that shares one limit between
// sidecars through Redis.
//
// Both use GCRA (the generic cell rate algorithm), which is a token bucket
// held as one number: the theoretical arrival time (TAT) at which the bucket
// is full again. A bucket of burst B refilling at r tokens/s admits a call at
// time t when max(TAT, t) + 1/r - t <= B/r, and then moves TAT to
// max(TAT, t) + 1/r. One number means the local bucket is one atomic
// compare-and-swap per call and the cluster bucket one key in Redis.
package ratelimit

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/errkind"
)

// tickShift: the local bucket counts time in 1/16 ns ticks so that rates up
// to 16e9 calls/s keep a non-zero emission interval.
const tickShift = 4

// Bucket is a local token bucket: rate tokens per second, up to burst
// tokens saved. It starts full. Safe for concurrent use; Allow is one atomic
// load and one compare-and-swap when uncontended, and never allocates.
type Bucket struct {
	tat      atomic.Int64 // theoretical arrival time, in ticks
	interval int64        // ticks per token
	tau      int64        // burst * interval
	rate     float64
	burst    int
}

// NewBucket returns a full bucket. rate must be > 0; burst <= 0 means
// max(1, rate).
func NewBucket(rate float64, burst int) (*Bucket, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return nil, errkind.InvalidArgument("rate", "must be a finite number > 0, got %v", rate)
	}
	if burst <= 0 {
		burst = int(math.Max(1, math.Min(rate, math.MaxInt32)))
	}
	iv := int64(math.Round(float64(time.Second<<tickShift) / rate))
	if iv < 1 {
		iv = 1
	}
	return &Bucket{interval: iv, tau: iv * int64(burst), rate: rate, burst: burst}, nil
}

// Rate returns the refill rate in tokens per second.
func (b *Bucket) Rate() float64 { return b.rate }

// Burst returns the bucket size.
func (b *Bucket) Burst() int { return b.burst }

// Allow takes one token at time now (clock nanoseconds). When the bucket is
// empty it returns false and how long until a token is available.
func (b *Bucket) Allow(now int64) (bool, time.Duration) {
	t := now << tickShift
	for {
		tat := b.tat.Load()
		next := max(tat, t) + b.interval
		if over := next - t - b.tau; over > 0 {
			return false, time.Duration(over >> tickShift)
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true, 0
		}
	}
}
