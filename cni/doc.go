// Package cni is weft-cni, Weft's CNI plugin (CNI spec 1.0 and 1.1: ADD, DEL,
// CHECK, STATUS and VERSION, dispatched by the upstream skel package).
//
// It owns the pod side of an endpoint: the veth pair (host side lxc…, peer in
// the pod's network namespace), the pod's address, MTU, routes and the static
// neighbour entry for the gateway. Everything else — the IP address, the
// security identity, the datapath on the host-side veth and the ipcache entry
// — belongs to weft-agent, which the plugin asks over its gRPC API
// (api/agentapi) on a unix socket. docs/agent.md is the contract, docs/cni.md
// the user's guide.
//
// Every error the plugin returns is a CNI error (types.Error) with one of the
// spec's codes and a message that names what was wrong, the value given and
// what would be accepted.
//
// It depends on containernetworking/cni (skel, types, version),
// containernetworking/plugins/pkg/ns for namespace switching on a locked OS
// thread, vishvananda/netlink for links, addresses, routes and neighbours, and
// agentapi for the agent.
package cni
