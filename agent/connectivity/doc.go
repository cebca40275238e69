// Package connectivity is the agent's side of `weft connectivity test` on
// standalone hosts: the Connectivity gRPC service (api/agentapi). It
// creates test pods as a container runtime would (a named network
// namespace, the node's CNI configuration list run with libcni, so
// weft-cni asks this very agent for the endpoint), serves echo servers
// (internal/echo) in them and on the node's address, and dials and pings
// from inside them or the host for a CLI that cannot enter the node.
//
// Only pods named cx-… are ever created or deleted, so the API cannot touch
// a real pod. Each test pod is recorded under <state-dir>/connectivity
// before anything is created, so a pod half-created by a crash is found and
// removed by the next CreateTestPod or DeleteTestPod of its name.
//
// It depends on api/agentapi, internal/echo, libcni and netlink; the agent
// only registers it on its socket.
package connectivity
