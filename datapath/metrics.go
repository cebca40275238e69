package datapath

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterReader reads the datapath's per-CPU counters, summed (Datapath).
type CounterReader interface {
	Metrics(ctx context.Context) (map[Reason]Counter, error)
}

// Collector exports the datapath's packet counters to Prometheus, read
// from the per-CPU BPF map at every scrape:
//
//	weft_datapath_packets_total{verdict="forwarded|dropped", reason="..."}
//	weft_datapath_bytes_total{verdict, reason}
//
// The BPF counters are keyed by reason only; direction is in the flow
// records (weft_flows_processed_total).
type Collector struct {
	r       CounterReader
	log     *slog.Logger
	packets *prometheus.Desc
	bytes   *prometheus.Desc
	errors  prometheus.Counter
}

// NewCollector exports r's counters; log receives read failures.
func NewCollector(r CounterReader, log *slog.Logger) *Collector {
	labels := []string{"verdict", "reason"}
	return &Collector{
		r:   r,
		log: log,
		packets: prometheus.NewDesc("weft_datapath_packets_total",
			"Packets the datapath forwarded or dropped, by reason (summed over CPUs).", labels, nil),
		bytes: prometheus.NewDesc("weft_datapath_bytes_total",
			"Bytes of the packets the datapath forwarded or dropped, by reason.", labels, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "weft_datapath_map_read_errors_total",
			Help: "Scrapes that could not read the datapath's BPF counters."}),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	ch <- c.bytes
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector. Every known reason is exported,
// at 0 when nothing was counted, so rates start from the first scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counters, err := c.r.Metrics(ctx)
	if err != nil {
		c.errors.Inc()
		c.log.Warn("read datapath counters", "err", err)
	} else {
		for reason := range reasonNames {
			cnt := counters[reason]
			verdict := "dropped"
			if reason == ReasonForwarded {
				verdict = "forwarded"
			}
			name := strings.ReplaceAll(reason.String(), " ", "_")
			ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(cnt.Packets), verdict, name)
			ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(cnt.Bytes), verdict, name)
		}
	}
	c.errors.Collect(ch)
}
