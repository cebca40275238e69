// Package datapathbench measures Weft's eBPF datapath against kernel-only
// baselines built in the same run: pod-to-pod throughput against plain
// routes and a plain VXLAN device, per-program BPF run time, service
// connection-setup latency against kube-proxy-style iptables chains, and
// the time to load services. Run with `make bench` (root).
package datapathbench
