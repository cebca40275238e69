// Package nodes is the node registry: every agent publishes its node record
// state/nodes/v1/<cluster>/<node> (records.Node, STABLE v1) lease-bound
// through its sync store, so a dead node's record vanishes by itself and a
// lost lease is repaired without the agent noticing; every agent watches
// the records of its cluster (and clustermesh those of remote clusters).
//
// Deleting a node for good (Delete, run by the apiserver or the CLI) removes
// its record and frees its pod CIDRs (state/podcidr), so the next node can
// take them; a node that merely restarts keeps its CIDR.
//
// It depends on kvstore, state/records, state/podcidr and state/watchstore.
package nodes
