// Package testenv builds multi-node, multi-cluster Weft environments out of
// network namespaces on one Linux host, for e2e tests, benchmarks, demos and
// `weft testenv`.
//
// An environment named <env> is:
//
//   - an underlay namespace weft-<env>-underlay holding a bridge (br0) that
//     every node hangs off, with the gateway address 192.168.0.1/16 and one
//     store address per cluster (192.168.0.1<c>);
//   - per cluster c (named c1, c2, …, id c) a store process (`weft testenv
//     run-store`: an embedded etcd, or a real Consul dev agent it supervises)
//     running in the underlay namespace, listening on the cluster's store
//     address for agents and, through a forwarder on a host loopback port
//     handed over at start, for the CLI in the host namespace;
//   - per node <cluster>-n<i> a namespace weft-<env>-<node> with a veth ul0
//     on the bridge (192.168.<c>.<i>/16, default route via 192.168.0.1) and
//     a real weft-agent process started inside it (detached, its log in the
//     node's directory);
//   - pods: namespaces weft-<env>-pod-<pod> wired by the real weft-cni
//     binary, run inside the node's namespace against that node's agent.
//
// State lives in /var/run/weft/testenv/<env>/env.json (layout in
// docs/agent.md and docs/testenv.md). Every process testenv starts carries
// WEFT_TESTENV=<env> in its environment, so Down finds and ends it even
// when env.json is stale after a crash; namespaces, the BPF pin directory
// /sys/fs/bpf/weft-testenv-<env> and the cgroup
// <cgroup2>/weft-testenv-<env> are found by name.
//
// testenv depends on kvstore/etcdserver (run-store), internal/toolcache (the
// Consul binary) and the agent's API (readiness); it needs root.
package testenv
