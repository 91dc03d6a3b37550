package governance

import (
	"fmt"
	"time"

	"github.com/outrig/outrig/governance/failure"
)

// Outcome is how a finished call counts for its backend's health.
type Outcome = failure.Outcome

// The outcomes.
const (
	Success = failure.Success
	Failure = failure.Failure
	Ignored = failure.Ignored
)

// Classify returns how a call that ended with err counts for breakers,
// adaptive limits, throttling and outlier detection. Failures:
// errkind.ErrUnavailable, errkind.ErrDeadlineExceeded,
// context.DeadlineExceeded, errors carrying gRPC UNAVAILABLE, INTERNAL,
// UNKNOWN, DEADLINE_EXCEEDED or DATA_LOSS or an HTTP 5xx (see
// failure.HTTPStatuser, failure.GRPCStatuser), and errors nothing
// recognises. Not failures: NOT_FOUND, INVALID_ARGUMENT, ETag mismatch, HTTP
// 4xx and every other code. context.Canceled is Ignored.
func Classify(err error) Outcome { return failure.Classify(err) }

// Labels identify a chain in metrics. Caller is not a label: every caller
// of a method shares its chain's state and series.
type Labels struct {
	Kind, Name, Method, Policy string
}

// Decision is what a chain did with a call.
type Decision uint8

// The decisions. Each allowed attempt is DecisionAllowed once, then its end
// is reported through ChainObserver.Done.
const (
	DecisionAllowed              Decision = iota // admitted by every stage
	DecisionDropped                              // shed by random drop
	DecisionRateLimited                          // rate limit (local or cluster)
	DecisionBreakerOpen                          // circuit breaker open or half-open full
	DecisionBulkheadFull                         // no slot and no room in the queue
	DecisionBulkheadTimeout                      // waited the queue timeout
	DecisionAdaptiveLimited                      // adaptive concurrency limit reached
	DecisionCanceled                             // the caller's context ended while queued
	DecisionTimedOut                             // the policy timeout ended the call
	DecisionRetried                              // a retry was started
	DecisionRetryBudgetExhausted                 // a retry was refused by the budget
	DecisionLimiterError                         // cluster rate limit unreachable; admitted (fail open)
	NumDecisions                                 // number of decisions
)

var decisionNames = [NumDecisions]string{
	"allowed", "dropped", "rate_limited", "breaker_open", "bulkhead_full", "bulkhead_timeout",
	"adaptive_limited", "canceled", "timeout", "retried", "retry_budget_exhausted", "limiter_error",
}

// String returns the decision's metric label value.
func (d Decision) String() string {
	if d < NumDecisions {
		return decisionNames[d]
	}
	return fmt.Sprintf("decision(%d)", uint8(d))
}

// Gauge names a per-chain value reported when it changes.
type Gauge uint8

const (
	// GaugeAdaptiveLimit is the current adaptive concurrency limit.
	GaugeAdaptiveLimit Gauge = iota
	// GaugeBreakerState is the breaker state: 0 closed, 1 open, 2 half-open.
	GaugeBreakerState
	NumGauges
)

// String returns the gauge's metric label value.
func (g Gauge) String() string {
	switch g {
	case GaugeAdaptiveLimit:
		return "adaptive_limit"
	case GaugeBreakerState:
		return "breaker_state"
	}
	return fmt.Sprintf("gauge(%d)", uint8(g))
}

// Observer receives the decisions of the chains, for metrics.
//
// Chain is called once per chain when the chain is built (on the first
// lookup of a new (policy, kind, name, method), under the table's lock: it
// may allocate but must not block long or call the table). The returned
// ChainObserver is called on every call of that chain, concurrently from
// many goroutines: its methods must be safe for concurrent use, must not
// block, and should not allocate (pre-resolve label values in Chain). A
// chain keeps its ChainObserver for its whole life, across recompiles that
// carry it over.
type Observer interface {
	Chain(l Labels) ChainObserver
}

// ChainObserver receives one chain's decisions (see Observer).
type ChainObserver interface {
	// Decision reports an admission decision or a retry/timeout event.
	Decision(d Decision)
	// Done reports the end of an allowed attempt and its duration.
	Done(o Outcome, latency time.Duration)
	// Gauge reports a new value of a per-chain gauge.
	Gauge(g Gauge, v float64)
}

// NopObserver discards everything.
type NopObserver struct{}

// Chain returns NopObserver.
func (NopObserver) Chain(Labels) ChainObserver { return NopObserver{} }

// Decision does nothing.
func (NopObserver) Decision(Decision) {}

// Done does nothing.
func (NopObserver) Done(Outcome, time.Duration) {}

// Gauge does nothing.
func (NopObserver) Gauge(Gauge, float64) {}
