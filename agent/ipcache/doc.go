// Package ipcache keeps the node's BPF ipcache equal to the union of its
// sources: pod entries of the store's ipcache (state/ipcache, local and
// remote clusters), the underlay addresses of known nodes (agent/nodes)
// and the CIDR prefixes of policies (agent/policy). Stale BPF entries are
// pruned once pods and nodes have both listed.
//
// It depends on datapath only, through the Datapath interface.
package ipcache
