// Package nodes is the agent's node table: it follows the node records of
// the cluster (and, fed by agent/clustermesh, of connected clusters) and
// reconciles, for every other node, the route to its pod CIDR (native
// routing) and the BPF ipcache entry of its underlay address (identity
// remote-node; this node's own: host).
//
// It depends on kvstore (the watch), state/records and, through small
// interfaces, on the datapath and agent/ipcache.
package nodes
