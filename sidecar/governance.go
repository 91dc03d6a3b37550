package sidecar

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/governance"
	govmetrics "github.com/outrig/outrig/governance/metrics"
)

// governanceDeps returns the sidecar's governance dependencies: the
// Prometheus observer. Deps.Redis stays nil on purpose: the runtime then
// resolves the redisComponent of a cluster-wide rate limit to a go-redis
// client of that component's instance in the snapshot being built, shared
// by every policy naming it and closed with the instance once replaced and
// drained (runtime/govredis.go).
func governanceDeps(reg *prometheus.Registry, _ *slog.Logger) (governance.Deps, error) {
	obs, err := govmetrics.New(reg)
	if err != nil {
		return governance.Deps{}, fmt.Errorf("governance metrics: %w", err)
	}
	return governance.Deps{Observer: obs}, nil
}
