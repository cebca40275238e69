// Package preflight checks whether a host can run weft-agent, without
// changing anything on it: privileges, kernel version, the BPF syscall and
// the program and map types the datapath loads, tcx or clsact, bpffs,
// cgroup v2, VXLAN (tunnel mode), the underlay device and its MTU,
// rp_filter, and whether the configured store answers. Each check says
// what it found and, when it fails, what to do about it.
//
// `weft preflight` and `weft-agent --preflight` print a Report; weft-agent
// also runs the checks it cannot fix itself before it starts (Refusal),
// after mounting bpffs and cgroup v2 where they are missing
// (datapath/bpf.EnsureFS, EnsureCgroup2).
//
// It depends on datapath/bpf (file system helpers), kvstore/dial,
// cilium/ebpf's feature probes and netlink. hosttest runs test code in a
// private mount namespace, so tests can take bpffs away.
package preflight
