// Package policy is the agent's policy engine: it keeps every local
// endpoint's datapath policy equal to what the store's policy documents
// compute over the identities of this cluster and of connected clusters
// (fed by agent/clustermesh), incrementally, and gives CIDR rules
// node-local identities in the BPF ipcache. Its API (agentapi.PolicyServer)
// imports, lists and deletes policy documents and streams flow events.
//
// The documents themselves (parsing, selectors, rule computation) are the
// top-level package policy; this one applies them on a node. It depends on
// kvstore, state/records, agent/endpoints (the endpoint type) and, through
// small interfaces, on the datapath and agent/ipcache.
package policy
