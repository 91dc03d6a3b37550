// Package metrics exports the governance chains' decisions to Prometheus.
//
// Series (labels kind, name, method, policy — one set per chain):
//
//	outrig_governance_decisions_total{..., decision}   counter: allowed, rate_limited, breaker_open, ...
//	outrig_governance_call_duration_seconds{..., outcome}  histogram of allowed attempts: success, failure, ignored
//	outrig_governance_gauge{..., gauge}                 adaptive_limit, breaker_state (0 closed, 1 open, 2 half-open)
//
// Label children are resolved once per chain and decision (on first use),
// so the per-call path is an atomic add on a counter and a histogram
// observation, with no allocation and no label hashing.
package metrics

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/governance"
	"github.com/outrig/outrig/governance/failure"
)

// Prometheus is a governance.Observer backed by Prometheus vectors.
type Prometheus struct {
	decisions *prometheus.CounterVec
	durations *prometheus.HistogramVec
	gauges    *prometheus.GaugeVec
}

var chainLabels = []string{"kind", "name", "method", "policy"}

// DurationBuckets are the call duration buckets, 50µs to about 12s.
var DurationBuckets = prometheus.ExponentialBuckets(50e-6, 2.5, 14)

// New registers the governance metrics on reg.
func New(reg prometheus.Registerer) (*Prometheus, error) {
	p := &Prometheus{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_governance_decisions_total",
			Help: "Decisions of the governance chain per method: allowed, or why a call was rejected, and retries/timeouts.",
		}, append(chainLabels[:4:4], "decision")),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrig_governance_call_duration_seconds",
			Help:    "Duration of attempts admitted by the governance chain, by outcome for the backend (success, failure, ignored).",
			Buckets: DurationBuckets,
		}, append(chainLabels[:4:4], "outcome")),
		gauges: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "outrig_governance_gauge",
			Help: "Per-method governance state: adaptive_limit, breaker_state (0 closed, 1 open, 2 half-open).",
		}, append(chainLabels[:4:4], "gauge")),
	}
	for _, c := range []prometheus.Collector{p.decisions, p.durations, p.gauges} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("governance metrics: %w", err)
		}
	}
	return p, nil
}

// Chain returns the observer of one chain.
func (p *Prometheus) Chain(l governance.Labels) governance.ChainObserver {
	return &chain{p: p, lv: [4]string{l.Kind, l.Name, l.Method, l.Policy}}
}

type counterRef struct{ c prometheus.Counter }
type histRef struct{ o prometheus.Observer }

const numOutcomes = 3

type chain struct {
	p         *Prometheus
	lv        [4]string
	decisions [governance.NumDecisions]atomic.Pointer[counterRef]
	durations [numOutcomes]atomic.Pointer[histRef]
}

func (c *chain) Decision(d governance.Decision) {
	if d >= governance.NumDecisions {
		return
	}
	r := c.decisions[d].Load()
	if r == nil {
		r = &counterRef{c.p.decisions.WithLabelValues(c.lv[0], c.lv[1], c.lv[2], c.lv[3], d.String())}
		c.decisions[d].Store(r)
	}
	r.c.Inc()
}

func (c *chain) Done(o governance.Outcome, latency time.Duration) {
	if int(o) >= numOutcomes {
		return
	}
	r := c.durations[o].Load()
	if r == nil {
		r = &histRef{c.p.durations.WithLabelValues(c.lv[0], c.lv[1], c.lv[2], c.lv[3], failure.Outcome(o).String())}
		c.durations[o].Store(r)
	}
	r.o.Observe(latency.Seconds())
}

func (c *chain) Gauge(g governance.Gauge, v float64) {
	c.p.gauges.WithLabelValues(c.lv[0], c.lv[1], c.lv[2], c.lv[3], g.String()).Set(v)
}
