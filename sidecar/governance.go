package sidecar

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/outrig/outrig/governance"
	govmetrics "github.com/outrig/outrig/governance/metrics"
)

func governanceDeps(reg *prometheus.Registry, _ *slog.Logger) (governance.Deps, error) {
	obs, err := govmetrics.New(reg)
	if err != nil {
		return governance.Deps{}, fmt.Errorf("governance metrics: %w", err)
	}
	return governance.Deps{Observer: obs}, nil
}
