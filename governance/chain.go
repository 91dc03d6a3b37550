package governance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outrig/outrig/errkind"
	"github.com/outrig/outrig/governance/adaptive"
	"github.com/outrig/outrig/governance/balancer"
	"github.com/outrig/outrig/governance/breaker"
	"github.com/outrig/outrig/governance/bulkhead"
	"github.com/outrig/outrig/governance/clock"
	"github.com/outrig/outrig/governance/drop"
	"github.com/outrig/outrig/governance/failure"
	"github.com/outrig/outrig/governance/ratelimit"
	"github.com/outrig/outrig/governance/retry"
)

var (
	errInvalid        = errkind.ErrInvalidArgument
	errRequiredPolicy = errkind.Required("policy")
	errPanicked       = errors.New("operation panicked")
)

// Chain is the compiled policy for one (policy, kind, name, method). Safe
// for concurrent use; its state is shared by every call that looks it up.
type Chain struct {
	noop    bool
	needEnd bool // Exit reads the clock: something uses the attempt's duration
	labels  Labels
	clk     clock.Clock
	obs     ChainObserver

	timeout  time.Duration
	retry    *retry.Policy
	drop     *drop.Dropper
	dropAdpt bool
	bucket   *ratelimit.Bucket
	cluster  *ratelimit.Cluster
	breaker  *breaker.Breaker
	bulkhead *bulkhead.Bulkhead
	adaptive adaptive.Limiter
	lb       *balancer.Config

	// Rejections, built once per chain so that rejecting allocates at most
	// the retry-after wrapper.
	prefix          string
	errDropped      error
	errRateLimited  error
	errBreakerOpen  error
	errBulkheadFull error
	errBulkheadWait error
	errAdaptive     error
}

// noopChain is the chain of calls no policy matches. It holds no state.
var noopChain = Chain{noop: true}

func (cp *compiledPolicy) newChain(kind, name, method string) *Chain {
	s := &cp.spec
	c := &Chain{
		labels:  Labels{Kind: kind, Name: name, Method: method, Policy: cp.name},
		clk:     cp.deps.Clock,
		timeout: s.timeout,
	}
	c.obs = cp.deps.Observer.Chain(c.labels)
	if c.obs == nil {
		c.obs = NopObserver{}
	}
	c.prefix = fmt.Sprintf("%s %s/%s (policy %q)", kind, name, method, cp.name)
	c.errDropped = fmt.Errorf("%s: call shed: %w", c.prefix, errkind.ErrUnavailable)
	c.errRateLimited = fmt.Errorf("%s: rate limited: %w", c.prefix, errkind.ErrResourceExhausted)
	c.errBreakerOpen = fmt.Errorf("%s: circuit breaker open: %w", c.prefix, errkind.ErrUnavailable)
	c.errBulkheadFull = fmt.Errorf("%s: bulkhead full: %w", c.prefix, errkind.ErrResourceExhausted)
	c.errBulkheadWait = fmt.Errorf("%s: bulkhead queue timeout: %w", c.prefix, errkind.ErrResourceExhausted)
	c.errAdaptive = fmt.Errorf("%s: adaptive concurrency limit reached: %w", c.prefix, errkind.ErrUnavailable)

	// The configs were validated by Compile with the same constructors, so
	// the errors below cannot happen; a stage that fails is left out rather
	// than failing the call.
	if s.retry != nil {
		c.retry, _ = retry.New(*s.retry)
	}
	if s.drop != nil {
		if c.drop, _ = drop.New(*s.drop); c.drop != nil {
			c.dropAdpt = c.drop.Adaptive()
		}
	}
	if r := s.rate; r != nil {
		l := cp.shared
		if l == nil {
			key := fmt.Sprintf("outrig:ratelimit:%s:%s:%s:%s", cp.name, kind, name, method)
			if r.perPolicy {
				key = fmt.Sprintf("outrig:ratelimit:%s:policy", cp.name)
			}
			l = r.newLimiter(key)
			if r.perPolicy {
				cp.shared = l // under cp.mu (chainFor): the first chain builds it
			}
		}
		c.bucket, c.cluster = l.bucket, l.cluster
	}
	if s.breaker != nil {
		cfg := *s.breaker
		cfg.OnState = func(st breaker.State) { c.obs.Gauge(GaugeBreakerState, float64(st)) }
		c.breaker, _ = breaker.New(cfg)
	}
	if s.bulkhead != nil {
		c.bulkhead, _ = bulkhead.New(*s.bulkhead, cp.deps.Clock)
	}
	if s.adaptive != nil {
		cfg := *s.adaptive
		cfg.CPU = cp.deps.CPU
		cfg.OnLimit = func(l int) { c.obs.Gauge(GaugeAdaptiveLimit, float64(l)) }
		if l, err := adaptive.New(cfg, cp.deps.Clock); err == nil {
			c.adaptive = l
			c.obs.Gauge(GaugeAdaptiveLimit, float64(l.Limit()))
		}
	}
	if c.breaker != nil {
		c.obs.Gauge(GaugeBreakerState, float64(breaker.Closed))
	}
	_, nop := c.obs.(NopObserver)
	c.needEnd = c.adaptive != nil || (s.breaker != nil && s.breaker.SlowCallDuration > 0) || !nop
	c.lb = s.lb
	return c
}

// Labels returns the chain's metric labels (zero for the no-op chain).
func (c *Chain) Labels() Labels { return c.labels }

// Policy returns the name of the policy that applies ("" for the no-op
// chain).
func (c *Chain) Policy() string { return c.labels.Policy }

// Noop reports whether no policy applies.
func (c *Chain) Noop() bool { return c.noop }

// Timeout returns the policy's per-call timeout (0: none). Callers that use
// Enter/Exit instead of Do apply it themselves.
func (c *Chain) Timeout() time.Duration { return c.timeout }

// LoadBalancer returns the policy's load balancing config, if any (for
// invocations: the caller builds a balancer.Picker per app id from it).
func (c *Chain) LoadBalancer() (balancer.Config, bool) {
	if c.lb == nil {
		return balancer.Config{}, false
	}
	cfg := *c.lb
	if cfg.Outlier != nil {
		o := *cfg.Outlier
		cfg.Outlier = &o
	}
	return cfg, true
}

// BreakerState returns the breaker's state, if the policy has a breaker.
func (c *Chain) BreakerState() (breaker.State, bool) {
	if c.breaker == nil {
		return 0, false
	}
	return c.breaker.State(), true
}

// AdaptiveLimit returns the current adaptive limit, if the policy has one.
func (c *Chain) AdaptiveLimit() (int, bool) {
	if c.adaptive == nil {
		return 0, false
	}
	return c.adaptive.Limit(), true
}

// Token is an admitted attempt. Exit must be called exactly once with the
// attempt's result. The zero Token (from the no-op chain or a rejection)
// may be exited and does nothing.
type Token struct {
	c      *Chain
	start  int64
	ticket breaker.Ticket
}

// Async reports whether a call under c may be run as Enter, then an
// operation that completes on another goroutine, then Token.Exit with its
// result — instead of Do: true when Enter never waits (no bulkhead queue, no
// cluster rate limit's round trip) and the chain neither retries nor sets a
// timeout of its own, which only Do applies. A caller that gets false uses
// Do.
func (c *Chain) Async() bool {
	return c.noop || (c.retry == nil && c.timeout <= 0 && c.bulkhead == nil && c.cluster == nil)
}

// Enter admits one attempt through random drop, rate limit, breaker,
// bulkhead (waiting in its queue if configured, until ctx ends) and
// adaptive limit, in that order. On success the caller runs the attempt and
// calls Token.Exit; on rejection the error wraps an errkind kind and no
// Exit is needed. The admitted path allocates nothing (a cluster rate limit
// does a Redis round trip).
func (c *Chain) Enter(ctx context.Context) (Token, error) {
	if c.noop {
		return Token{}, nil
	}
	now := c.clk.Now()
	if c.drop != nil && !c.drop.Allow(now) {
		c.obs.Decision(DecisionDropped)
		if ra := c.drop.Retry(); ra > 0 {
			return Token{}, errkind.WithRetryAfter(c.errDropped, retryHint(ra))
		}
		return Token{}, c.errDropped
	}
	if c.bucket != nil {
		if ok, ra := c.bucket.Allow(now); !ok {
			return Token{}, c.reject(now, DecisionRateLimited, errkind.WithRetryAfter(c.errRateLimited, retryHint(ra)))
		}
	}
	if c.cluster != nil {
		ok, ra, err := c.cluster.Allow(ctx)
		switch {
		case err != nil:
			c.obs.Decision(DecisionLimiterError) // fail open
		case !ok:
			return Token{}, c.reject(now, DecisionRateLimited, errkind.WithRetryAfter(c.errRateLimited, retryHint(ra)))
		}
	}
	t := Token{c: c}
	if c.breaker != nil {
		tk, ra, ok := c.breaker.Allow(now)
		if !ok {
			return Token{}, c.reject(now, DecisionBreakerOpen, errkind.WithRetryAfter(c.errBreakerOpen, retryHint(ra)))
		}
		t.ticket = tk
	}
	if c.bulkhead != nil && !c.bulkhead.TryAcquire() {
		if err := c.bulkhead.Acquire(ctx); err != nil {
			c.cancelBreaker(t)
			switch {
			case errors.Is(err, bulkhead.ErrFull):
				return Token{}, c.reject(now, DecisionBulkheadFull, c.errBulkheadFull)
			case errors.Is(err, bulkhead.ErrQueueTimeout):
				return Token{}, c.reject(now, DecisionBulkheadTimeout, c.errBulkheadWait)
			}
			return Token{}, c.reject(now, DecisionCanceled, fmt.Errorf("%s: waiting for a bulkhead slot: %w", c.prefix, err))
		}
		now = c.clk.Now() // the wait does not count as the call's latency
	}
	if c.adaptive != nil && !c.adaptive.Acquire(now) {
		if c.bulkhead != nil {
			c.bulkhead.Release()
		}
		c.cancelBreaker(t)
		return Token{}, c.reject(now, DecisionAdaptiveLimited, c.errAdaptive)
	}
	t.start = now
	c.obs.Decision(DecisionAllowed)
	return t, nil
}

// retryHint rounds a retry-after hint up to a whole millisecond, the unit
// it crosses the wire in (the retry-after-ms trailer): a wait of 300µs
// truncated to "0" would tell the caller to retry at once, into the same
// rejection.
func retryHint(d time.Duration) time.Duration {
	if r := d % time.Millisecond; r != 0 {
		d += time.Millisecond - r
	}
	return max(d, time.Millisecond)
}

// reject reports d and un-counts the request for adaptive throttling (a
// local rejection says nothing about the backend).
func (c *Chain) reject(now int64, d Decision, err error) error {
	if c.dropAdpt {
		c.drop.Cancel(now)
	}
	c.obs.Decision(d)
	return err
}

func (c *Chain) cancelBreaker(t Token) {
	if c.breaker != nil {
		c.breaker.Cancel(t.ticket)
	}
}

// Exit ends an admitted attempt with its result: it frees the bulkhead slot
// and the adaptive limit, feeds the breaker, the adaptive limit and the drop
// statistics, and reports the outcome and latency. It allocates nothing.
func (t Token) Exit(err error) {
	c := t.c
	if c == nil {
		return
	}
	end := t.start // a clock read costs as much as the rest of Exit: only when needed
	if c.needEnd {
		end = c.clk.Now()
	}
	rtt := end - t.start
	o, accepted := failure.Success, true
	if err != nil {
		code := failure.Code(err)
		o = failure.OfCode(code)
		accepted = o == failure.Success && code != codes.ResourceExhausted
	}
	if c.adaptive != nil {
		c.adaptive.Release(end, rtt, o)
	}
	if c.bulkhead != nil {
		c.bulkhead.Release()
	}
	if c.breaker != nil {
		c.breaker.Done(t.ticket, end, rtt, o)
	}
	if c.dropAdpt {
		c.drop.Done(end, accepted)
	}
	c.obs.Done(o, time.Duration(rtt))
}
