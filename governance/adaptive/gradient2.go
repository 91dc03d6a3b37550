package adaptive

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/failure"
)

// Gradient2 is the gradient adaptive limit (see the package doc).
type Gradient2 struct {
	cfg      Config
	windowNs int64
	alpha    float64 // EWMA weight of the long-term RTT

	limit    atomic.Int64
	inflight atomic.Int64
	peak     atomic.Int64 // most calls in flight during this sample window
	sum      atomic.Int64 // RTT sum of this window's samples
	count    atomic.Int64 // samples in this window
	next     atomic.Int64 // clock time of the next recomputation

	mu      sync.Mutex // held (TryLock) while recomputing
	est     float64
	longRTT float64
}

func newGradient2(cfg Config) (*Gradient2, error) {
	if cfg.InitialLimit == 0 {
		cfg.InitialLimit = 20
	}
	if cfg.SampleWindow == 0 {
		cfg.SampleWindow = 100e6
	}
	if cfg.MinSamples == 0 {
		cfg.MinSamples = 10
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = 1.5
	}
	if cfg.Smoothing == 0 {
		cfg.Smoothing = 0.2
	}
	if cfg.LongWindow == 0 {
		cfg.LongWindow = 600
	}
	switch {
	case cfg.SampleWindow < 0:
		return nil, errkind.InvalidArgument("sample_window", "must be > 0, got %v", cfg.SampleWindow)
	case cfg.Tolerance < 1:
		return nil, errkind.InvalidArgument("tolerance", "must be >= 1, got %v", cfg.Tolerance)
	case !(cfg.Smoothing > 0 && cfg.Smoothing <= 1):
		return nil, errkind.InvalidArgument("smoothing", "must be in (0, 1], got %v", cfg.Smoothing)
	case cfg.LongWindow < 1:
		return nil, errkind.InvalidArgument("long_window", "must be > 0, got %d", cfg.LongWindow)
	}
	init := min(max(cfg.InitialLimit, cfg.MinLimit), cfg.MaxLimit)
	g := &Gradient2{cfg: cfg, windowNs: int64(cfg.SampleWindow), alpha: 2 / (float64(cfg.LongWindow) + 1), est: float64(init)}
	g.limit.Store(int64(init))
	return g, nil
}

// Acquire admits a call while fewer than Limit calls are in flight.
func (g *Gradient2) Acquire(now int64) bool {
	n := g.inflight.Add(1)
	if n > g.limit.Load() {
		g.inflight.Add(-1)
		return false
	}
	if n > g.peak.Load() {
		g.peak.Store(n)
	}
	return true
}

// Cancel ends an admitted call that never ran.
func (g *Gradient2) Cancel() { g.inflight.Add(-1) }

// Release ends a call; successful calls are RTT samples. Failed and
// abandoned calls are not (a fast failure would look like low latency).
func (g *Gradient2) Release(now, rtt int64, o failure.Outcome) {
	g.inflight.Add(-1)
	if o == failure.Success {
		g.sum.Add(rtt)
		g.count.Add(1)
	}
	if now >= g.next.Load() && g.mu.TryLock() {
		g.recompute(now)
		g.mu.Unlock()
	}
}

// Limit returns the current limit.
func (g *Gradient2) Limit() int { return int(g.limit.Load()) }

// Inflight returns the calls in flight.
func (g *Gradient2) Inflight() int { return int(g.inflight.Load()) }

func (g *Gradient2) recompute(now int64) {
	if now < g.next.Load() {
		return
	}
	n := g.count.Load()
	if n < int64(g.cfg.MinSamples) {
		return // keep collecting
	}
	n = g.count.Swap(0)
	sum := g.sum.Swap(0)
	peak := g.peak.Swap(g.inflight.Load())
	g.next.Store(now + g.windowNs)
	if n == 0 {
		return
	}
	short := float64(sum) / float64(n)
	if short <= 0 {
		short = 1
	}
	if g.longRTT == 0 {
		g.longRTT = short
	} else {
		g.longRTT += (short - g.longRTT) * g.alpha
	}
	// After a long period of high latency the long-term average lags far
	// above a recovered short-term one: let it catch up faster.
	if g.longRTT/short > 2 {
		g.longRTT *= 0.95
	}
	gradient := math.Max(0.5, math.Min(1, g.cfg.Tolerance*g.longRTT/short))
	next := g.est*gradient + math.Sqrt(g.est)
	if float64(peak) < g.est/2 {
		next = math.Min(next, g.est) // app-limited: do not grow
	}
	est := g.est*(1-g.cfg.Smoothing) + next*g.cfg.Smoothing
	est = math.Max(float64(g.cfg.MinLimit), math.Min(float64(g.cfg.MaxLimit), est))
	g.est = est
	if l := int64(est); l != g.limit.Load() {
		g.limit.Store(l)
		if g.cfg.OnLimit != nil {
			g.cfg.OnLimit(int(l))
		}
	}
}
