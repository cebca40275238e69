// Package bpf owns Weft's eBPF programs and maps: the C sources under c/,
// the bpf2go output generated from them (committed, so building never needs
// clang), the Go mirrors of the STABLE map layouts, and the loader that
// pins maps under a node's directory in bpffs.
//
// Programs (see c/weft.c and c/sock.h):
//   - from_container: tc ingress of each endpoint's host-side veth.
//   - from_overlay: tc ingress of the VXLAN device (tunnel mode).
//   - from_netdev: tc ingress of the underlay device (native routing,
//     NodePort/ExternalIP/LoadBalancer DNAT).
//   - sock_connect4, sock_sendmsg4, sock_recvmsg4: cgroup socket load
//     balancer for ClusterIP services.
//
// The package depends on cilium/ebpf only; attaching programs, devices and
// routes belong to package datapath. Regenerate with `make generate`.
package bpf
