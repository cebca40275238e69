package flow

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftnet/weft/api/agentapi"
)

// Metrics are the flow recorder's Prometheus metrics.
type Metrics struct {
	processed *prometheus.CounterVec
}

// NewMetrics registers the flow metrics of ring with reg.
func NewMetrics(reg prometheus.Registerer, ring *Ring) (*Metrics, error) {
	m := &Metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "flows", Name: "processed_total",
			Help: "Flow events recorded, by verdict and observation point.",
		}, []string{"verdict", "observation_point"}),
	}
	cs := []prometheus.Collector{
		m.processed,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "flow_ring", Name: "flows",
			Help: "Flows held in the node's ring of recent flows.",
		}, func() float64 { return float64(ring.Status().GetNumFlows()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "weft", Subsystem: "flow_ring", Name: "capacity_flows",
			Help: "Capacity of the node's ring of recent flows.",
		}, func() float64 { return float64(len(ring.buf)) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "flow_readers", Name: "lost_flows_total",
			Help: "Flows that readers too slow to keep up missed, summed over readers.",
		}, func() float64 { return float64(ring.lost.Load()) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe counts a recorded flow (the Recorder calls it; nil: no-op).
func (m *Metrics) Observe(f *agentapi.Flow) {
	if m == nil {
		return
	}
	m.processed.WithLabelValues(strings.ToLower(f.GetVerdict().String()), f.GetObservationPoint()).Inc()
}
