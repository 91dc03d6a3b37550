package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type dtoMetric struct{ count uint64 }

func (d *dtoMetric) read(m prometheus.Metric) error {
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		return err
	}
	d.count = pb.GetHistogram().GetSampleCount()
	return nil
}
