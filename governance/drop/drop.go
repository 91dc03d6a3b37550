// Package drop sheds a share of calls at random before they reach the
// backend: a fixed fraction, or adaptively in proportion to how much the
// backend has been rejecting (client-side throttling).
//
// Adaptive mode keeps, over a sliding window, the requests attempted and
// those the backend accepted, and drops each new request with probability
// max(0, (requests − K·accepts) / (requests + 1)). While the backend accepts
// everything the probability is 0; when it rejects most calls the client
// stops sending most of them locally, which spares the backend the cost of
// rejecting. K = 2 lets through about twice the traffic the backend accepts.
// With both a fraction and K set, the larger probability applies.
package drop

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/internal/window"
)

// Config of a dropper.
type Config struct {
	Fraction float64       // fixed share dropped, 0..1
	K        float64       // > 0 enables adaptive dropping
	Window   time.Duration // adaptive window; default 10s
	Buckets  int           // default 10
}

// Dropper decides which calls to shed. Safe for concurrent use; Allow and
// Done never allocate. The random numbers come from math/rand/v2's
// per-thread generator, which takes no lock.
type Dropper struct {
	fixed uint64 // drop when rand < fixed; all if fraction is 1
	all   bool
	k     float64
	win   *window.Window // fields: requests, accepts
	rand  func() uint64  // uniformly random 64-bit numbers
}

// New returns a dropper.
func New(cfg Config) (*Dropper, error) {
	if !(cfg.Fraction >= 0 && cfg.Fraction <= 1) {
		return nil, errkind.InvalidArgument("fraction", "must be in [0, 1], got %v", cfg.Fraction)
	}
	if !(cfg.K >= 0) || math.IsInf(cfg.K, 0) {
		return nil, errkind.InvalidArgument("k", "must be >= 0, got %v", cfg.K)
	}
	if cfg.Window < 0 {
		return nil, errkind.InvalidArgument("window", "must be > 0, got %v", cfg.Window)
	}
	d := &Dropper{k: cfg.K, rand: rand.Uint64}
	switch {
	case cfg.Fraction >= 1:
		d.all = true
	case cfg.Fraction > 0:
		d.fixed = uint64(cfg.Fraction * (1 << 63) * 2)
	}
	if cfg.K > 0 {
		if cfg.Window == 0 {
			cfg.Window = 10 * time.Second
		}
		if cfg.Buckets == 0 {
			cfg.Buckets = 10
		}
		w, err := window.New(cfg.Window, cfg.Buckets)
		if err != nil {
			return nil, errkind.InvalidArgument("window", "%v", err)
		}
		d.win = w
	}
	return d, nil
}

// Adaptive reports whether the dropper throttles adaptively (then Done must
// be called for every allowed call).
func (d *Dropper) Adaptive() bool { return d.win != nil }

// Probability returns the current drop probability at clock time now.
func (d *Dropper) Probability(now int64) float64 {
	p := 0.0
	if d.all {
		p = 1
	} else if d.fixed > 0 {
		p = float64(d.fixed) / (1 << 63) / 2
	}
	if d.win != nil {
		s := d.win.Sum(now)
		req, acc := float64(s[0]), float64(s[1])
		p = math.Max(p, (req-d.k*acc)/(req+1))
	}
	return p
}

// Allow decides whether a call at clock time now goes ahead.
func (d *Dropper) Allow(now int64) bool {
	if d.all {
		return false
	}
	r := d.rand()
	if d.win == nil {
		return r >= d.fixed
	}
	// The probability comes from the requests before this one (so the
	// first call of an empty window goes through); then this one counts as
	// a request, dropped or not.
	s := d.win.Sum(now)
	d.win.Add(now, 0, 1)
	if r < d.fixed {
		return false
	}
	req, acc := float64(s[0]), float64(s[1])
	p := (req - d.k*acc) / (req + 1)
	if p <= 0 {
		return true
	}
	return float64(r>>11)/(1<<53) >= p
}

// Retry returns a hint of when a dropped caller may try again: one bucket
// of the adaptive window (the time for the statistics to move), or 0 for a
// fixed fraction (a new attempt is an independent draw).
func (d *Dropper) Retry() time.Duration {
	if d.win == nil {
		return 0
	}
	return time.Duration(d.win.Width())
}

// Cancel un-counts the request of an allowed call that never reached the
// backend (a later stage rejected it), in adaptive mode.
func (d *Dropper) Cancel(now int64) {
	if d.win != nil {
		d.win.Add(now, 0, -1)
	}
}

// Done records whether the backend accepted an allowed call (adaptive mode).
func (d *Dropper) Done(now int64, accepted bool) {
	if d.win != nil && accepted {
		d.win.Add(now, 1, 1)
	}
}
