// Package agent is weft-agent, one per node. It registers the node and its
// pod CIDR in the store, creates and deletes endpoints for weft-cni
// (IP, identity, datapath attachment, ipcache publication), consumes nodes,
// identities, the ipcache, services and policies of its cluster (and of
// connected remote clusters) from the store and drives the datapath
// reconcilers with them, probes the other nodes' health endpoints, and
// serves the gRPC APIs of package agentapi (Agent, Services, Policy) on a
// unix socket.
//
// Files by concept: agent.go (lifecycle), endpoints.go, nodes.go,
// ipcachesync.go, health.go, server.go and bpfdump.go (the Agent API),
// services*.go, policy*.go, clustermesh*.go.
//
// It depends on kvstore (the store), state/... (records, identities, pod
// CIDRs, ipcache, sync store), services, policy, clustermesh and datapath
// (BPF maps, devices, routes). It never talks to Kubernetes: the store is
// its only source.
package agent
