package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics of one apiserver, in its own registry (no global state).
type metrics struct {
	reg              *prometheus.Registry
	mirrorKeys       *prometheus.GaugeVec
	mirrorEvents     *prometheus.CounterVec
	mirrorRejected   *prometheus.CounterVec
	remotes          prometheus.Gauge
	readers          prometheus.Gauge
	heartbeat        prometheus.Gauge
	collectedIDs     prometheus.Counter
	freedNodes       prometheus.Counter
	adminRequests    *prometheus.CounterVec
	certificatesSign prometheus.Counter
}

func newMetrics(cluster string) *metrics {
	const ns = "weft_apiserver"
	labels := prometheus.Labels{"cluster": cluster}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		mirrorKeys: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "mirrored_keys",
			Help: "Keys of each kind copied into the served store.", ConstLabels: labels}, []string{"kind"}),
		mirrorEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "mirror_events_total",
			Help: "Changes copied into the served store.", ConstLabels: labels}, []string{"kind", "type"}),
		mirrorRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "mirror_rejected_total",
			Help: "Records not served, by kind and reason: malformed, foreign-prefix (a record of another cluster), identity-range.", ConstLabels: labels}, []string{"kind", "reason"}),
		remotes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "remote_clusters",
			Help: "Remote clusters this cluster's agents connect to.", ConstLabels: labels}),
		readers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "remote_readers",
			Help: "Remote clusters holding a read-only user of the served store.", ConstLabels: labels}),
		heartbeat: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "heartbeat_timestamp_seconds",
			Help: "Time of the last heartbeat written.", ConstLabels: labels}),
		collectedIDs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "identities_collected_total",
			Help: "Unreferenced identities deleted.", ConstLabels: labels}),
		freedNodes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "node_cidrs_freed_total",
			Help: "Pod CIDRs freed because their node's record was gone longer than the grace period.", ConstLabels: labels}),
		adminRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "admin_requests_total",
			Help: "Admin API calls by method and gRPC code.", ConstLabels: labels}, []string{"method", "code"}),
		certificatesSign: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "certificates_signed_total",
			Help: "Client certificates signed for remote clusters.", ConstLabels: labels}),
	}
	m.reg.MustRegister(m.mirrorKeys, m.mirrorEvents, m.mirrorRejected, m.remotes, m.readers, m.heartbeat,
		m.collectedIDs, m.freedNodes, m.adminRequests, m.certificatesSign,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// serve serves /metrics on addr until ctx ends.
func (m *metrics) serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}
