// Package retry decides whether and when a failed call is tried again:
// bounded attempts, exponential backoff with jitter, only on retryable gRPC
// codes, and a retry budget so that retries cannot multiply the load on a
// backend that is already failing.
//
// The budget counts, over a sliding window, the calls made (first attempts)
// and the retries granted. A retry is granted while
//
//	retries ≤ BudgetRatio × calls + MinRetriesPerSecond × window seconds
//
// so in a full outage the attempts stay near (1 + BudgetRatio) × calls,
// whatever MaxAttempts is, and a service with little traffic can still
// retry a few calls per second.
package retry

import (
	"math"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/internal/window"
)

// Defaults for the backoff when a policy does not set it.
const (
	DefaultInitialBackoff = 25 * time.Millisecond
	DefaultMaxBackoff     = time.Second
)

// Config of a retry policy. Zero values take the defaults noted, except the
// backoffs: InitialBackoff 0 retries at once.
type Config struct {
	MaxAttempts         int           // total attempts including the first, >= 1
	InitialBackoff      time.Duration // delay before the first retry
	MaxBackoff          time.Duration // cap of the delay before jitter; 0: no cap
	Multiplier          float64       // default 2
	Jitter              float64       // share of the delay randomised, 0..1; default 0.2
	Retryable           []codes.Code  // default UNAVAILABLE
	BudgetRatio         float64       // default 0.2
	MinRetriesPerSecond float64       // default 10
	BudgetWindow        time.Duration // default 10s
	BudgetBuckets       int           // default 10
}

// Policy is a compiled retry policy with its budget. Safe for concurrent
// use; the budget is shared by every call of the policy.
type Policy struct {
	cfg       Config
	retryable uint32 // bit per code
	win       *window.Window
	minPerWin float64
	rand      func() float64
}

// New compiles cfg.
func New(cfg Config) (*Policy, error) {
	if cfg.Multiplier == 0 {
		cfg.Multiplier = 2
	}
	if cfg.Jitter == 0 {
		cfg.Jitter = 0.2
	}
	if len(cfg.Retryable) == 0 {
		cfg.Retryable = []codes.Code{codes.Unavailable}
	}
	if cfg.BudgetRatio == 0 {
		cfg.BudgetRatio = 0.2
	}
	if cfg.MinRetriesPerSecond == 0 {
		cfg.MinRetriesPerSecond = 10
	}
	if cfg.BudgetWindow == 0 {
		cfg.BudgetWindow = 10 * time.Second
	}
	if cfg.BudgetBuckets == 0 {
		cfg.BudgetBuckets = 10
	}
	switch {
	case cfg.MaxAttempts < 1:
		return nil, errkind.InvalidArgument("max_attempts", "must be >= 1, got %d", cfg.MaxAttempts)
	case cfg.InitialBackoff < 0:
		return nil, errkind.InvalidArgument("initial_backoff", "must be >= 0, got %v", cfg.InitialBackoff)
	case cfg.MaxBackoff < 0 || (cfg.MaxBackoff > 0 && cfg.MaxBackoff < cfg.InitialBackoff):
		return nil, errkind.InvalidArgument("max_backoff", "must be >= initial_backoff %v, got %v", cfg.InitialBackoff, cfg.MaxBackoff)
	case !(cfg.Multiplier >= 1) || math.IsInf(cfg.Multiplier, 0):
		return nil, errkind.InvalidArgument("multiplier", "must be >= 1, got %v", cfg.Multiplier)
	case !(cfg.Jitter >= 0 && cfg.Jitter <= 1):
		return nil, errkind.InvalidArgument("jitter", "must be in [0, 1], got %v", cfg.Jitter)
	case !(cfg.BudgetRatio >= 0) || math.IsInf(cfg.BudgetRatio, 0):
		return nil, errkind.InvalidArgument("budget_ratio", "must be >= 0, got %v", cfg.BudgetRatio)
	case !(cfg.MinRetriesPerSecond >= 0) || math.IsInf(cfg.MinRetriesPerSecond, 0):
		return nil, errkind.InvalidArgument("min_retries_per_second", "must be >= 0, got %v", cfg.MinRetriesPerSecond)
	}
	p := &Policy{cfg: cfg, rand: rand.Float64}
	for i, c := range cfg.Retryable {
		if c > 31 {
			return nil, errkind.InvalidArgument("retryable_codes", "[%d]: code %d out of range", i, c)
		}
		p.retryable |= 1 << c
	}
	w, err := window.New(cfg.BudgetWindow, cfg.BudgetBuckets)
	if err != nil {
		return nil, errkind.InvalidArgument("budget_window", "%v", err)
	}
	p.win = w
	p.minPerWin = cfg.MinRetriesPerSecond * cfg.BudgetWindow.Seconds()
	return p, nil
}

// MaxAttempts returns the attempts allowed per call, the first included.
func (p *Policy) MaxAttempts() int { return p.cfg.MaxAttempts }

// Retryable reports whether an attempt that failed with code may be retried.
func (p *Policy) Retryable(c codes.Code) bool { return c <= 31 && p.retryable&(1<<c) != 0 }

// Backoff returns the delay before retry n (n = 1 for the second attempt):
// InitialBackoff × Multiplier^(n−1), capped at MaxBackoff, then spread
// uniformly over ±Jitter of itself.
func (p *Policy) Backoff(n int) time.Duration {
	if p.cfg.InitialBackoff == 0 {
		return 0
	}
	d := float64(p.cfg.InitialBackoff) * math.Pow(p.cfg.Multiplier, float64(max(n-1, 0)))
	if p.cfg.MaxBackoff > 0 {
		d = math.Min(d, float64(p.cfg.MaxBackoff))
	}
	d *= 1 - p.cfg.Jitter + 2*p.cfg.Jitter*p.rand()
	return time.Duration(d)
}

// Call counts a call (its first attempt) at clock time now in the budget.
func (p *Policy) Call(now int64) { p.win.Add(now, 0, 1) }

// TryRetry takes one retry from the budget at clock time now, reporting
// whether the budget allowed it. Concurrent callers may overshoot the
// budget by at most their number.
func (p *Policy) TryRetry(now int64) bool {
	s := p.win.Sum(now)
	if float64(s[1]+1) > p.cfg.BudgetRatio*float64(s[0])+p.minPerWin {
		return false
	}
	p.win.Add(now, 1, 1)
	return true
}
