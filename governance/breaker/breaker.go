// Package breaker is a circuit breaker on failure rate and slow-call rate
// over a sliding window.
//
// States: Closed admits every call and records its result in a bucketed
// window (atomics, no lock). When the window holds at least MinCalls calls
// and failures/calls >= FailureRateThreshold or slow/calls >=
// SlowCallRateThreshold, the breaker opens. Open rejects every call for
// SleepWindow (the retry-after hint is the time left), then the next call
// moves it to HalfOpen, which admits HalfOpenProbes probe calls: if all of
// them succeed (and are not slow) it closes with an empty window; the first
// failed or slow probe opens it again for another SleepWindow.
//
// Every transition starts a new generation; results of calls admitted in an
// older generation are ignored, so calls that were in flight when the state
// changed cannot skew the new state.
package breaker

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/failure"
	"github.com/outrig/outrig/governance/internal/window"
)

// State of a breaker.
type State uint8

const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Config of a breaker. Zero durations and counts take the defaults noted.
type Config struct {
	Window                time.Duration // default 10s
	Buckets               int           // window buckets; default 10
	MinCalls              int           // default 20
	FailureRateThreshold  float64       // 0..1; 0 disables
	SlowCallDuration      time.Duration // a call at least this long is slow
	SlowCallRateThreshold float64       // 0..1; 0 disables
	SleepWindow           time.Duration // default 5s
	HalfOpenProbes        int           // default 3
	// OnState, if set, is called after each transition, under the breaker's
	// lock: it must be quick and must not call the breaker.
	OnState func(State)
}

func (c *Config) defaults() error {
	if c.Window == 0 {
		c.Window = 10 * time.Second
	}
	if c.Buckets == 0 {
		c.Buckets = 10
	}
	if c.MinCalls == 0 {
		c.MinCalls = 20
	}
	if c.SleepWindow == 0 {
		c.SleepWindow = 5 * time.Second
	}
	if c.HalfOpenProbes == 0 {
		c.HalfOpenProbes = 3
	}
	switch {
	case c.Window < 0:
		return errkind.InvalidArgument("window", "must be > 0, got %v", c.Window)
	case c.Buckets < 0 || int64(c.Window)/int64(c.Buckets) == 0:
		return errkind.InvalidArgument("buckets", "must be > 0 and shorter than the window, got %d", c.Buckets)
	case c.MinCalls < 0:
		return errkind.InvalidArgument("min_calls", "must be >= 0, got %d", c.MinCalls)
	case !(c.FailureRateThreshold >= 0 && c.FailureRateThreshold <= 1):
		return errkind.InvalidArgument("failure_rate_threshold", "must be in [0, 1], got %v", c.FailureRateThreshold)
	case !(c.SlowCallRateThreshold >= 0 && c.SlowCallRateThreshold <= 1):
		return errkind.InvalidArgument("slow_call_rate_threshold", "must be in [0, 1], got %v", c.SlowCallRateThreshold)
	case c.SlowCallRateThreshold > 0 && c.SlowCallDuration <= 0:
		return errkind.InvalidArgument("slow_call_duration", "must be > 0 when slow_call_rate_threshold is set, got %v", c.SlowCallDuration)
	case c.SleepWindow < 0:
		return errkind.InvalidArgument("sleep_window", "must be > 0, got %v", c.SleepWindow)
	case c.HalfOpenProbes < 0:
		return errkind.InvalidArgument("half_open_probes", "must be > 0, got %d", c.HalfOpenProbes)
	case c.FailureRateThreshold == 0 && c.SlowCallRateThreshold == 0:
		return errkind.InvalidArgument("failure_rate_threshold", "a breaker needs failure_rate_threshold or slow_call_rate_threshold > 0")
	}
	return nil
}

// Ticket identifies an admitted call to Done and Cancel: the generation and
// state it was admitted in.
type Ticket uint64

const (
	stateBits = 2
	stateMask = 1<<stateBits - 1
)

func (t Ticket) state() State { return State(t & stateMask) }

// Breaker is a circuit breaker. Safe for concurrent use. In the closed
// state Allow is one atomic load and Done one bucket update; neither
// allocates.
type Breaker struct {
	cfg      Config
	slowNs   int64
	st       atomic.Uint64 // generation<<stateBits | state
	until    atomic.Int64  // open: clock time the sleep window ends
	win      *window.Window
	mu       sync.Mutex // transitions and half-open accounting
	probes   int        // half-open: probes admitted and not finished
	probesOK int        // half-open: probes that succeeded
}

// New returns a closed breaker.
func New(cfg Config) (*Breaker, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	w, err := window.New(cfg.Window, cfg.Buckets)
	if err != nil {
		return nil, errkind.InvalidArgument("window", "%v", err)
	}
	return &Breaker{cfg: cfg, slowNs: int64(cfg.SlowCallDuration), win: w}, nil
}

// State returns the current state (an open breaker whose sleep window has
// passed reports Open until a call arrives).
func (b *Breaker) State() State { return State(b.st.Load() & stateMask) }

// Allow asks to admit a call at clock time now. When it returns ok, the
// caller must later call Done or Cancel with the ticket. When rejected it
// returns how long until the breaker may admit again.
func (b *Breaker) Allow(now int64) (t Ticket, retryAfter time.Duration, ok bool) {
	s := b.st.Load()
	if State(s&stateMask) == Closed {
		return Ticket(s), 0, true
	}
	return b.allowSlow(now)
}

func (b *Breaker) allowSlow(now int64) (Ticket, time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.st.Load()
	switch State(s & stateMask) {
	case Closed:
		return Ticket(s), 0, true
	case Open:
		if left := b.until.Load() - now; left > 0 {
			return 0, time.Duration(left), false
		}
		s = b.transition(HalfOpen)
		fallthrough
	case HalfOpen:
		if b.probes+b.probesOK >= b.cfg.HalfOpenProbes {
			return 0, min(b.cfg.SleepWindow, time.Second), false
		}
		b.probes++
		return Ticket(s), 0, true
	}
	return 0, 0, false
}

// transition moves to state ns with a new generation. Caller holds mu.
func (b *Breaker) transition(ns State) uint64 {
	gen := b.st.Load() >> stateBits
	s := (gen+1)<<stateBits | uint64(ns)
	b.probes, b.probesOK = 0, 0
	if ns != Open {
		b.win.Reset()
	}
	b.st.Store(s)
	if b.cfg.OnState != nil {
		b.cfg.OnState(ns)
	}
	return s
}

func (b *Breaker) open(now int64) {
	b.until.Store(now + int64(b.cfg.SleepWindow))
	b.transition(Open)
}

// Cancel returns the admission of a call that never ran (a later stage
// rejected it): a half-open probe slot is given back, nothing is recorded.
func (b *Breaker) Cancel(t Ticket) {
	if t.state() != HalfOpen {
		return
	}
	b.mu.Lock()
	if b.st.Load() == uint64(t) && b.probes > 0 {
		b.probes--
	}
	b.mu.Unlock()
}

// Done records the result of an admitted call that ended at clock time now
// after rtt nanoseconds.
func (b *Breaker) Done(t Ticket, now, rtt int64, o failure.Outcome) {
	if b.st.Load() != uint64(t) {
		return // admitted in an older generation
	}
	slow := b.slowNs > 0 && rtt >= b.slowNs
	if t.state() == HalfOpen {
		b.probeDone(t, now, o, slow)
		return
	}
	if o == failure.Ignored {
		return
	}
	failed := o == failure.Failure
	var df, ds int64
	if failed {
		df = 1
	}
	if slow {
		ds = 1
	}
	b.win.Add4(now, 1, df, ds, 0)
	if (failed && b.cfg.FailureRateThreshold > 0) || (slow && b.cfg.SlowCallRateThreshold > 0) {
		b.evaluate(t, now)
	}
}

func (b *Breaker) evaluate(t Ticket, now int64) {
	s := b.win.Sum(now)
	calls, failures, slow := s[0], s[1], s[2]
	if calls == 0 || calls < int64(b.cfg.MinCalls) {
		return
	}
	trip := (b.cfg.FailureRateThreshold > 0 && float64(failures) >= b.cfg.FailureRateThreshold*float64(calls)) ||
		(b.cfg.SlowCallRateThreshold > 0 && float64(slow) >= b.cfg.SlowCallRateThreshold*float64(calls))
	if !trip {
		return
	}
	b.mu.Lock()
	if b.st.Load() == uint64(t) {
		b.open(now)
	}
	b.mu.Unlock()
}

func (b *Breaker) probeDone(t Ticket, now int64, o failure.Outcome, slow bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.st.Load() != uint64(t) {
		return
	}
	b.probes--
	switch {
	case o == failure.Ignored:
		// The slot is free again for another probe.
	case o == failure.Failure || (slow && b.cfg.SlowCallRateThreshold > 0):
		b.open(now)
	default:
		b.probesOK++
		if b.probesOK >= b.cfg.HalfOpenProbes {
			b.transition(Closed)
		}
	}
}
