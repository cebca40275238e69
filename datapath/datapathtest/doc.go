// Package datapathtest builds throwaway clusters for datapath tests and
// benchmarks: node namespaces joined by an underlay bridge, pod namespaces
// behind veths, one datapath per node with its own pin directory and
// cgroup. Everything carries a random suffix and is removed by the test's
// cleanup, also on failure. It needs root.
package datapathtest
