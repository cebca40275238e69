package l7lb

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what balancers do, by document ("<namespace>/<name>").
// One set per process; balancers share it.
type Metrics struct {
	requests  *prometheus.CounterVec
	tries     *prometheus.CounterVec
	ejections *prometheus.CounterVec
}

// NewMetrics registers the balancers' counters with reg:
// weft_l7lb_requests_total{l7lb,code} (answers to clients),
// weft_l7lb_tries_total{l7lb,target,outcome} (requests sent to a target
// Service's backend: ok, 5xx, error for a refused connection or no answer
// in time) and weft_l7lb_ejections_total{l7lb}.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "l7lb", Name: "requests_total",
			Help: "Requests L7 load balancers answered, by L7LoadBalancing document and status code.",
		}, []string{"l7lb", "code"}),
		tries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "l7lb", Name: "tries_total",
			Help: "Requests L7 load balancers sent to backends, by document, target Service and outcome (ok, 5xx, error); more tries than requests are retries.",
		}, []string{"l7lb", "target", "outcome"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "weft", Subsystem: "l7lb", Name: "ejections_total",
			Help: "Backends taken out of rotation by outlier detection, by document.",
		}, []string{"l7lb"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.tries, m.ejections} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Forget drops the series of a document that is gone.
func (m *Metrics) Forget(doc string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.CounterVec{m.requests, m.tries, m.ejections} {
		v.DeletePartialMatch(prometheus.Labels{"l7lb": doc})
	}
}

func (m *Metrics) request(doc string, code int) {
	if m != nil {
		m.requests.WithLabelValues(doc, strconv.Itoa(code)).Inc()
	}
}

func (m *Metrics) try(doc, target, outcome string) {
	if m != nil {
		m.tries.WithLabelValues(doc, target, outcome).Inc()
	}
}

func (m *Metrics) ejection(doc string) {
	if m != nil {
		m.ejections.WithLabelValues(doc).Inc()
	}
}
