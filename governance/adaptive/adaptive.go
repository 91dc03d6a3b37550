// Package adaptive limits concurrency to a value that follows the backend's
// latency, instead of a fixed number.
//
// Two algorithms:
//
//   - Gradient2: compares a short-term average RTT (one sample window)
//     with a long-term exponential average. When the short one rises above
//     tolerance × the long one, the limit shrinks in proportion; when it
//     does not, the limit grows by about sqrt(limit) per window — but only
//     while the limit is actually being used (at least half of it in
//     flight), so an idle service does not inflate its limit.
//   - BBR: while CPU usage is above a threshold (and for one second after
//     the last shed call), admits at most maxPass × minRT calls at once,
//     where maxPass is the largest number of calls completed in one bucket of
//     the window and minRT the smallest average RTT of a bucket — the
//     bandwidth-delay product of the service.
//
// Both keep the in-flight count in an atomic; Acquire and Release are a few
// atomic operations and never allocate. Gradient2 recomputes its limit once
// per sample window under a TryLock, so no caller waits for it; BBR
// recomputes its bound once per bucket.
package adaptive

import (
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
	"github.com/outrig/outrig/governance/failure"
)

// Limiter is an adaptive concurrency limit. Safe for concurrent use.
//
// Every Acquire that returns true is followed by exactly one Release (the
// call ran) or Cancel (it did not).
type Limiter interface {
	// Acquire admits a call at clock time now if the limit allows.
	Acquire(now int64) bool
	// Release ends an admitted call at clock time now; rtt is its duration.
	Release(now, rtt int64, o failure.Outcome)
	// Cancel ends an admitted call that never ran.
	Cancel()
	// Limit returns the current limit (for metrics).
	Limit() int
	// Inflight returns the calls admitted and not yet released.
	Inflight() int
}

// CPU reports the machine's CPU usage in [0, 1]. Implementations are safe
// for concurrent use and cheap (Usage is called on every admission while a
// BBR limiter is active).
type CPU interface {
	Usage(now int64) float64
}

// CPUFunc adapts a function to CPU.
type CPUFunc func(now int64) float64

// Usage calls f.
func (f CPUFunc) Usage(now int64) float64 { return f(now) }

// Algorithm names.
const (
	Gradient2Algorithm = "gradient2"
	BBRAlgorithm       = "bbr"
)

// Config of an adaptive limit. Zero values take the defaults noted.
type Config struct {
	Algorithm    string // gradient2 | bbr
	InitialLimit int    // gradient2 start; default 20
	MinLimit     int    // default 1
	MaxLimit     int    // default 1000
	// OnLimit, if set, is called with the new limit when it changes; it
	// must be quick and must not call the limiter.
	OnLimit func(limit int)

	// Gradient2.
	SampleWindow time.Duration // how often the limit is recomputed; default 100ms
	MinSamples   int           // samples needed before a window counts; default 10
	Tolerance    float64       // short/long RTT ratio tolerated; default 1.5
	Smoothing    float64       // weight of a new estimate, 0..1; default 0.2
	LongWindow   int           // windows averaged by the long-term RTT; default 600

	// BBR.
	CPU          CPU           // required for bbr (see NewProcStat)
	CPUThreshold float64       // default 0.8
	Window       time.Duration // statistics window; default 5s
	Buckets      int           // default 50
	Cooldown     time.Duration // keep shedding this long after a drop; default 1s
}

// New returns the limiter Config.Algorithm names. clk is used by BBR only to
// start its cool-down clock.
func New(cfg Config, clk clock.Clock) (Limiter, error) {
	if cfg.MinLimit == 0 {
		cfg.MinLimit = 1
	}
	if cfg.MaxLimit == 0 {
		cfg.MaxLimit = 1000
	}
	switch {
	case cfg.MinLimit < 0:
		return nil, errkind.InvalidArgument("min_limit", "must be > 0, got %d", cfg.MinLimit)
	case cfg.MaxLimit < cfg.MinLimit:
		return nil, errkind.InvalidArgument("max_limit", "must be >= min_limit %d, got %d", cfg.MinLimit, cfg.MaxLimit)
	case cfg.InitialLimit < 0:
		return nil, errkind.InvalidArgument("initial_limit", "must be >= 0, got %d", cfg.InitialLimit)
	}
	switch cfg.Algorithm {
	case Gradient2Algorithm:
		return newGradient2(cfg)
	case BBRAlgorithm:
		return newBBR(cfg, clk)
	case "":
		return nil, errkind.Required("algorithm")
	}
	return nil, errkind.InvalidArgument("algorithm", "must be gradient2 or bbr, got %q", cfg.Algorithm)
}
