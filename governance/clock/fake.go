package clock

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Fake is a manually advanced Clock for tests. It starts at 0 and moves only
// when Advance is called. Safe for concurrent use.
type Fake struct {
	now atomic.Int64

	mu     sync.Mutex
	timers []*fakeTimer
}

// NewFake returns a Fake clock at time 0.
func NewFake() *Fake { return &Fake{} }

// Now returns the fake monotonic time in nanoseconds.
func (f *Fake) Now() int64 { return f.now.Load() }

// NewTimer returns a timer that fires when Advance moves the clock to or past
// now+d. A timer with d <= 0 fires immediately.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1), at: f.now.Load() + int64(d)}
	if d <= 0 {
		t.c <- time.Unix(0, t.at)
		return t
	}
	f.mu.Lock()
	f.timers = append(f.timers, t)
	f.mu.Unlock()
	return t
}

// Advance moves the clock forward by d and fires every timer that is due, in
// deadline order.
func (f *Fake) Advance(d time.Duration) {
	now := f.now.Add(int64(d))
	f.mu.Lock()
	var due []*fakeTimer
	kept := f.timers[:0]
	for _, t := range f.timers {
		if t.at <= now {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	for i := len(kept); i < len(f.timers); i++ {
		f.timers[i] = nil
	}
	f.timers = kept
	f.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at < due[j].at })
	for _, t := range due {
		t.c <- time.Unix(0, t.at)
	}
}

// Timers returns the number of timers waiting to fire.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// WaitTimers blocks until at least n timers are waiting, polling in real
// time for up to five seconds. It reports whether they appeared; tests use it
// to know that a goroutine has started waiting before they Advance.
func (f *Fake) WaitTimers(n int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if f.Timers() >= n {
			return true
		}
		time.Sleep(100 * time.Microsecond)
	}
	return false
}

type fakeTimer struct {
	f  *Fake
	c  chan time.Time
	at int64
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	for i, x := range t.f.timers {
		if x == t {
			t.f.timers = append(t.f.timers[:i], t.f.timers[i+1:]...)
			return true
		}
	}
	return false
}
