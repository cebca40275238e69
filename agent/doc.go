// Package agent is weft-agent, one per node. It registers the node and its
// pod CIDR in the store, creates and deletes endpoints for weft-cni
// (IP, identity, datapath attachment, ipcache publication), consumes nodes,
// identities and the ipcache of its cluster from the store and drives the
// datapath reconcilers with them, probes the other nodes' health endpoints,
// and serves the gRPC API of package agentapi on a unix socket.
//
// It depends on kvstore (the store), state/... (records, identities, pod
// CIDRs, ipcache, sync store) and datapath (BPF maps, devices, routes). It
// never talks to Kubernetes: the store is its only source.
package agent
