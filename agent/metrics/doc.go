// Package metrics is weft-agent's Prometheus endpoint: the registry, the
// /metrics server of --metrics-address (off by default; the documented
// port is 9962), and the definitions of the agent-level metrics its
// components update ([Agent]: endpoints, identities, ipcache, services,
// policy, store operations, leases, clustermesh remotes, health probes).
//
// Metrics of a concept with its own package live next to it and are
// registered into the same registry: the datapath's BPF counters
// (datapath.NewCollector) and the flow records (flow.NewMetrics). Names
// follow Prometheus conventions: weft_ prefix, _total for counters,
// base units (_seconds, _bytes); `promtool check metrics` passes on the
// output (metrics tests). It depends on client_golang only.
package metrics
