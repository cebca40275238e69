// Package agent is weft-agent's composition root, one agent per node. New
// connects to the store, checks the cluster's configuration, takes the
// node's pod CIDR and loads the datapath, then builds one component per
// concept and wires them; Run runs them together (errgroup), registers the
// node and only then serves the gRPC API of package api/agentapi on a unix
// socket.
//
// Components, each a package of its own with a Run(ctx):
//   - agent/endpoints: the node's pods (address, identity, datapath, ipcache)
//   - agent/nodes: the node table (routes, node addresses in the ipcache)
//   - agent/ipcache: the node's BPF ipcache, fed by the store's ipcache,
//     the node table and policy CIDRs
//   - agent/policy: policy documents → every local endpoint's policy map
//   - agent/services: service records → the LB maps; the Services API
//   - agent/clustermesh: connections to remote clusters' stores
//   - agent/health: node-to-node health probes
//
// Files here: agent.go (lifecycle and wiring), config.go, underlay.go,
// server.go (the Agent API), bpfdump.go (weft bpf … list).
//
// It never talks to Kubernetes: the store is its only source.
package agent
