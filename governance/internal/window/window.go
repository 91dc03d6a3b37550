// Package window counts events in a sliding window of time buckets, lock-free.
//
// A Window has n buckets, each covering span/n of time and holding Fields
// counters. Writers add to the bucket of the current time with atomic adds;
// the first writer of a new period claims the bucket by a CAS on its epoch
// and zeroes it. Counts are approximate at bucket boundaries under
// concurrency (an add racing with the reset of its bucket may be lost or land
// in the new period); single-threaded use is exact.
package window

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Fields is the number of counters per bucket.
const Fields = 4

// Window is a bucketed sliding window. Safe for concurrent use.
type Window struct {
	width   int64 // nanoseconds per bucket
	buckets []bucket
}

type bucket struct {
	epoch atomic.Int64 // the period (now/width) the counters belong to
	v     [Fields]atomic.Int64
	_     [64 - 8*(Fields+1)%64]byte // keep buckets on their own cache lines
}

// New returns a window spanning span with n buckets.
func New(span time.Duration, n int) (*Window, error) {
	if n <= 0 {
		return nil, fmt.Errorf("window buckets must be > 0, got %d", n)
	}
	w := int64(span) / int64(n)
	if w <= 0 {
		return nil, fmt.Errorf("window span %v too short for %d buckets", span, n)
	}
	win := &Window{width: w, buckets: make([]bucket, n)}
	for i := range win.buckets {
		win.buckets[i].epoch.Store(-1)
	}
	return win, nil
}

// Width returns the length of one bucket in nanoseconds.
func (w *Window) Width() int64 { return w.width }

// Len returns the number of buckets.
func (w *Window) Len() int { return len(w.buckets) }

// Period returns the bucket period (now/width) of a time.
func (w *Window) Period(now int64) int64 { return now / w.width }

func (w *Window) bucket(now int64) *bucket {
	p := now / w.width
	b := &w.buckets[p%int64(len(w.buckets))]
	if e := b.epoch.Load(); e != p && e < p && b.epoch.CompareAndSwap(e, p) {
		for i := range b.v {
			b.v[i].Store(0)
		}
	}
	return b
}

// Add adds d to field f of the bucket of now.
func (w *Window) Add(now int64, f int, d int64) {
	w.bucket(now).v[f].Add(d)
}

// Add4 adds the non-zero deltas to the bucket of now.
func (w *Window) Add4(now int64, d0, d1, d2, d3 int64) {
	b := w.bucket(now)
	if d0 != 0 {
		b.v[0].Add(d0)
	}
	if d1 != 0 {
		b.v[1].Add(d1)
	}
	if d2 != 0 {
		b.v[2].Add(d2)
	}
	if d3 != 0 {
		b.v[3].Add(d3)
	}
}

// Sum returns the totals of the buckets within the window ending at now
// (the current bucket included).
func (w *Window) Sum(now int64) (s [Fields]int64) {
	p := now / w.width
	oldest := p - int64(len(w.buckets)) + 1
	for i := range w.buckets {
		b := &w.buckets[i]
		if e := b.epoch.Load(); e >= oldest && e <= p {
			for f := range s {
				s[f] += b.v[f].Load()
			}
		}
	}
	return s
}

// Each calls fn with the counters of every bucket of the window ending at
// now that has data, oldest first; when complete is true the current
// (still filling) bucket is left out.
func (w *Window) Each(now int64, complete bool, fn func(v [Fields]int64)) {
	p := now / w.width
	last := p
	if complete {
		last = p - 1
	}
	for q := p - int64(len(w.buckets)) + 1; q <= last; q++ {
		if q < 0 {
			continue
		}
		b := &w.buckets[q%int64(len(w.buckets))]
		if b.epoch.Load() != q {
			continue
		}
		var v [Fields]int64
		for f := range v {
			v[f] = b.v[f].Load()
		}
		fn(v)
	}
}

// Reset empties the window.
func (w *Window) Reset() {
	for i := range w.buckets {
		w.buckets[i].epoch.Store(-1)
		for f := range w.buckets[i].v {
			w.buckets[i].v[f].Store(0)
		}
	}
}
