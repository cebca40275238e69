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
	Traffic(ctx context.Context) (map[TrafficKey]Counter, error)
}

// Collector exports the datapath's packet counters to Prometheus, read
// from the per-CPU BPF map at every scrape:
//
//	weft_datapath_packets_total{verdict="forwarded|dropped", reason="...", direction="ingress|egress"}
//	weft_datapath_bytes_total{verdict, reason, direction}
type Collector struct {
	r       CounterReader
	log     *slog.Logger
	packets *prometheus.Desc
	bytes   *prometheus.Desc
	errors  prometheus.Counter
}

// NewCollector exports r's counters; log receives read failures.
func NewCollector(r CounterReader, log *slog.Logger) *Collector {
	labels := []string{"verdict", "reason", "direction"}
	return &Collector{
		r:   r,
		log: log,
		packets: prometheus.NewDesc("weft_datapath_packets_total",
			"Packets the datapath forwarded or dropped, by reason and direction (summed over CPUs).", labels, nil),
		bytes: prometheus.NewDesc("weft_datapath_bytes_total",
			"Bytes of the packets the datapath forwarded or dropped, by reason and direction.", labels, nil),
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
	counters, err := c.r.Traffic(ctx)
	if err != nil {
		c.errors.Inc()
		c.log.Warn("read datapath counters", "err", err)
	} else {
		for reason := range reasonNames {
			verdict := "dropped"
			if reason == ReasonForwarded {
				verdict = "forwarded"
			}
			name := strings.ReplaceAll(reason.String(), " ", "_")
			for _, dir := range []Direction{Ingress, Egress} {
				cnt := counters[TrafficKey{reason, dir}]
				ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(cnt.Packets), verdict, name, dir.String())
				ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(cnt.Bytes), verdict, name, dir.String())
			}
		}
	}
	c.errors.Collect(ch)
}
