// Package telemetry holds the sidecar's Prometheus metrics. A Metrics is
// built on a registry passed in (never the global one) and is safe for
// concurrent use.
package telemetry

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sidecar's API and delivery metrics.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	delivery *prometheus.CounterVec
	Config   *prometheus.CounterVec
}

// New registers the metrics on reg.
func New(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_api_requests_total",
			Help: "App API calls by app, API method, component and gRPC code.",
		}, []string{"app", "method", "component", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "outrig_api_latency_seconds",
			Help:    "App API call latency by app, API method and component.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"app", "method", "component"}),
		delivery: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_pubsub_deliveries_total",
			Help: "Pub/sub delivery outcomes by app, pubsub, topic and outcome.",
		}, []string{"app", "pubsub", "topic", "outcome"}),
		Config: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "outrig_config_updates_total",
			Help: "Configuration resources applied or rejected, by type and result.",
		}, []string{"type", "result"}),
	}
	reg.MustRegister(m.requests, m.latency, m.delivery, m.Config)
	return m
}

// API records one app API call.
func (m *Metrics) API(app, method, component, code string, d time.Duration) {
	m.requests.WithLabelValues(app, method, component, code).Inc()
	m.latency.WithLabelValues(app, method, component).Observe(d.Seconds())
}

// CounterFunc registers a counter named name whose value f returns at each
// scrape (counters kept elsewhere: the shared-memory server's, the
// busy-poll gate's). Call it once per name.
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// GaugeFunc is CounterFunc for a value that goes up and down.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// Delivery records one pub/sub delivery outcome.
func (m *Metrics) Delivery(app, pubsub, topic, outcome string) {
	m.delivery.WithLabelValues(app, pubsub, topic, outcome).Inc()
}
