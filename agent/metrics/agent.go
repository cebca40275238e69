package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Agent holds the agent-level metrics. Gauges of things the agent holds
// (endpoints, identities, ipcache entries, services, backends) are set by
// the component that owns them; the others are updated where the event
// happens. Every method is safe for concurrent use.
type Agent struct {
	Endpoints       prometheus.Gauge
	Identities      *prometheus.GaugeVec // scope: local (this cluster), remote
	IPCacheEntries  *prometheus.GaugeVec // cluster
	Services        prometheus.Gauge
	ServiceBackends prometheus.Gauge

	PolicyImports   *prometheus.CounterVec // outcome: stored, refused
	PolicyRecompute prometheus.Histogram   // seconds per recomputation of endpoint rules

	StoreOps    *prometheus.HistogramVec // operation, outcome: ok, error
	StoreErrors *prometheus.CounterVec   // operation
	LeaseLosses prometheus.Counter

	RemoteReady    *prometheus.GaugeVec // remote: 1 connected and synced, 0 not
	RemoteLastSync *prometheus.GaugeVec // remote: Unix time of the last full sync
	RemoteEntries  *prometheus.GaugeVec // remote, kind: nodes, identities, ipcache, services
	// RemoteRejected counts the remote's records the agent refused, by
	// reason (malformed, foreign-prefix, cluster-id, identity-range,
	// pod-cidr, address-conflict, global-address); set through SetRemoteRejected.
	RemoteRejected *prometheus.CounterVec

	HealthProbe *prometheus.GaugeVec // node: last probe's round trip in seconds

	all []prometheus.Collector

	mu       sync.Mutex
	refresh  func(*Agent)
	rejected map[string]map[string]uint64 // what RemoteRejected holds, by remote and reason
}

// NewAgent registers the agent-level metrics with reg. They carry no node
// or cluster label: Prometheus' target labels say which agent it is.
func NewAgent(reg prometheus.Registerer) (*Agent, error) {
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "weft", Name: name, Help: help})
	}
	gv := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "weft", Name: name, Help: help}, labels)
	}
	a := &Agent{
		Endpoints:       g("endpoints", "Endpoints (pods) on this node."),
		Identities:      gv("identities", "Security identities the agent knows, by scope.", "scope"),
		IPCacheEntries:  gv("ipcache_entries", "Entries of the node's ipcache, by cluster.", "cluster"),
		Services:        g("services", "Services programmed into the node's load balancer."),
		ServiceBackends: g("service_backends", "Backends programmed into the node's load balancer."),
		PolicyImports: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Name: "policy_imports_total",
			Help: "Policy imports through the agent API, by outcome."}, []string{"outcome"}),
		PolicyRecompute: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "weft", Name: "policy_recompute_duration_seconds",
			Help: "Time to recompute the policy rules of the node's endpoints.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)}),
		StoreOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "weft", Name: "kvstore_operation_duration_seconds",
			Help: "Latency of store operations, by operation and outcome.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)},
			[]string{"operation", "outcome"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Name: "kvstore_operation_errors_total",
			Help: "Store operations that failed, by operation."}, []string{"operation"}),
		LeaseLosses: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "weft", Name: "kvstore_lease_losses_total",
			Help: "Times the agent's store lease (etcd) or session (Consul) was lost."}),
		RemoteReady:    gv("clustermesh_remote_cluster_ready", "1 when the remote cluster is connected and synced, else 0.", "remote"),
		RemoteLastSync: gv("clustermesh_remote_last_sync_timestamp_seconds", "Time of the last full sync with the remote cluster.", "remote"),
		RemoteEntries:  gv("clustermesh_remote_entries", "Entries received from the remote cluster, by kind.", "remote", "kind"),
		RemoteRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "weft", Name: "clustermesh_remote_rejected_records_total",
			Help: "Records of the remote cluster the agent refused, by reason."}, []string{"remote", "reason"}),
		HealthProbe: gv("health_probe_latency_seconds", "Round trip of the last health probe to each node.", "node"),
		rejected:    map[string]map[string]uint64{},
	}
	a.all = []prometheus.Collector{a.Endpoints, a.Identities, a.IPCacheEntries, a.Services, a.ServiceBackends,
		a.PolicyImports, a.PolicyRecompute, a.StoreOps, a.StoreErrors, a.LeaseLosses,
		a.RemoteReady, a.RemoteLastSync, a.RemoteEntries, a.RemoteRejected, a.HealthProbe}
	if err := reg.Register(a); err != nil {
		return nil, err
	}
	return a, nil
}

// OnScrape sets a function called before every scrape, to set the gauges
// of what the agent holds from its components' current state.
func (a *Agent) OnScrape(fn func(*Agent)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh = fn
}

// Describe implements prometheus.Collector.
func (a *Agent) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range a.all {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector: refresh, then every metric.
func (a *Agent) Collect(ch chan<- prometheus.Metric) {
	a.mu.Lock()
	if a.refresh != nil {
		a.refresh(a)
	}
	a.mu.Unlock()
	for _, c := range a.all {
		c.Collect(ch)
	}
}

// ObserveStoreOp records one store operation's latency and outcome.
func (a *Agent) ObserveStoreOp(op string, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		a.StoreErrors.WithLabelValues(op).Inc()
	}
	a.StoreOps.WithLabelValues(op, outcome).Observe(took.Seconds())
}

// SetRemote records a remote cluster's state.
func (a *Agent) SetRemote(remote string, ready bool, lastSync time.Time) {
	v := 0.0
	if ready {
		v = 1
	}
	a.RemoteReady.WithLabelValues(remote).Set(v)
	if !lastSync.IsZero() {
		a.RemoteLastSync.WithLabelValues(remote).Set(float64(lastSync.UnixNano()) / 1e9)
	}
}

// SetRemoteRejected brings the rejected-records counter of a remote up to
// the counts its connection reports (they only grow while the agent runs).
// Called from the scrape refresh, under a.mu.
func (a *Agent) SetRemoteRejected(remote string, byReason map[string]uint64) {
	seen := a.rejected[remote]
	if seen == nil {
		seen = map[string]uint64{}
		a.rejected[remote] = seen
	}
	for reason, n := range byReason {
		if n > seen[reason] {
			a.RemoteRejected.WithLabelValues(remote, reason).Add(float64(n - seen[reason]))
			seen[reason] = n
		}
	}
}

// DeleteRemote forgets a disconnected remote cluster.
func (a *Agent) DeleteRemote(remote string) {
	a.RemoteRejected.DeletePartialMatch(prometheus.Labels{"remote": remote})
	delete(a.rejected, remote)
	a.RemoteReady.DeleteLabelValues(remote)
	a.RemoteLastSync.DeleteLabelValues(remote)
	a.RemoteEntries.DeletePartialMatch(prometheus.Labels{"remote": remote})
}
