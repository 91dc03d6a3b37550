package registry

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	frozen    prometheus.Gauge
	instances prometheus.Gauge
	expired   prometheus.Counter
}

// newMetrics builds the registry's metrics and registers them on reg (nil:
// kept but not exported; never the global registry).
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		frozen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrig_registry_frozen",
			Help: "1 while expiry is frozen because too many leases would expire at once, else 0.",
		}),
		instances: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "outrig_registry_instances",
			Help: "App instances holding a lease.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "outrig_registry_expired_total",
			Help: "Leases removed because their TTL passed without renewal.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.frozen, m.instances, m.expired} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register registry metrics: %w", err)
		}
	}
	return m, nil
}
