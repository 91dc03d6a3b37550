package adaptive

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/clock"
	"github.com/outrig/outrig/governance/failure"
	"github.com/outrig/outrig/governance/internal/window"
)

// BBR is the CPU-gated bandwidth-delay limit (see the package doc).
type BBR struct {
	cfg      Config
	cooldown int64
	win      *window.Window // fields: completed calls, RTT sum, RTT samples

	inflight atomic.Int64
	lastDrop atomic.Int64
	period   atomic.Int64 // bucket period the cached bound was computed for
	bound    atomic.Int64 // cached maxPass × minRT, clamped to [min, max]
}

const (
	fPass = iota
	fRTSum
	fRTCount
)

func newBBR(cfg Config, clk clock.Clock) (*BBR, error) {
	if cfg.CPU == nil {
		return nil, errkind.Required("cpu")
	}
	if cfg.CPUThreshold == 0 {
		cfg.CPUThreshold = 0.8
	}
	if cfg.Window == 0 {
		cfg.Window = 5 * time.Second
	}
	if cfg.Buckets == 0 {
		cfg.Buckets = 50
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = time.Second
	}
	if !(cfg.CPUThreshold > 0 && cfg.CPUThreshold <= 1) {
		return nil, errkind.InvalidArgument("cpu_threshold", "must be in (0, 1], got %v", cfg.CPUThreshold)
	}
	w, err := window.New(cfg.Window, cfg.Buckets)
	if err != nil {
		return nil, errkind.InvalidArgument("window", "%v", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	b := &BBR{cfg: cfg, cooldown: int64(cfg.Cooldown), win: w}
	b.lastDrop.Store(clk.Now() - b.cooldown - 1)
	b.period.Store(-1)
	b.bound.Store(int64(cfg.MaxLimit))
	return b, nil
}

// Acquire admits a call unless the CPU is hot (or was recently) and the
// calls in flight already reach maxPass × minRT.
func (b *BBR) Acquire(now int64) bool {
	if b.cfg.CPU.Usage(now) < b.cfg.CPUThreshold && now-b.lastDrop.Load() > b.cooldown {
		b.inflight.Add(1)
		return true
	}
	if cur := b.inflight.Load(); cur > 0 && cur >= b.maxInflight(now) {
		if b.lastDrop.Load() != now {
			b.lastDrop.Store(now)
		}
		return false
	}
	b.inflight.Add(1)
	return true
}

// Cancel ends an admitted call that never ran.
func (b *BBR) Cancel() { b.inflight.Add(-1) }

// Release ends a call; successful calls feed maxPass and minRT.
func (b *BBR) Release(now, rtt int64, o failure.Outcome) {
	b.inflight.Add(-1)
	if o == failure.Success {
		b.win.Add4(now, 1, rtt, 1, 0)
	}
}

// Limit returns the current bound maxPass × minRT (MaxLimit before the
// window has data).
func (b *BBR) Limit() int { return int(b.bound.Load()) }

// Inflight returns the calls in flight.
func (b *BBR) Inflight() int { return int(b.inflight.Load()) }

func (b *BBR) maxInflight(now int64) int64 {
	p := b.win.Period(now)
	if b.period.Load() == p {
		return b.bound.Load()
	}
	var maxPass int64
	minRT := math.MaxFloat64
	b.win.Each(now, true, func(v [window.Fields]int64) {
		maxPass = max(maxPass, v[fPass])
		if v[fRTCount] > 0 {
			minRT = math.Min(minRT, float64(v[fRTSum])/float64(v[fRTCount]))
		}
	})
	bound := int64(b.cfg.MaxLimit)
	if maxPass > 0 && minRT < math.MaxFloat64 {
		bound = int64(math.Ceil(float64(maxPass) * minRT / float64(b.win.Width())))
		bound = max(int64(b.cfg.MinLimit), min(int64(b.cfg.MaxLimit), bound))
	}
	old := b.bound.Swap(bound)
	b.period.Store(p)
	if old != bound && b.cfg.OnLimit != nil {
		b.cfg.OnLimit(int(bound))
	}
	return bound
}
