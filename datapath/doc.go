// Package datapath turns a node's desired network state into Weft's eBPF
// datapath: it loads the programs of package bpf, pins their maps under
// /sys/fs/bpf/weft/<node>, creates the VXLAN device, attaches programs with
// tcx (clsact + cls_bpf where tcx is missing) and the cgroup socket hooks,
// and writes endpoints, ipcache entries, policy, services and node routes.
//
// Every reconciler is idempotent: Upsert* writes one object, Delete*
// removes one (a missing object is not an error), Prune* removes what is not
// in the desired set. After an agent restart, New followed by the same
// reconcilers converges without disturbing established flows: maps are
// reused from their pins and tcx links are pinned and updated in place.
//
// The package knows nothing about the store: the agent feeds it. It depends
// on package bpf, cilium/ebpf and vishvananda/netlink.
package datapath
