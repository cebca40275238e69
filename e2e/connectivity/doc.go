// Package connectivity runs named traffic scenarios against a testenv
// environment and explains each failure: what was sent, from where, to
// where, and what happened instead.
//
// It creates its own pods through the environment (two on the first node
// of every cluster, one on each other node, labelled
// app=weft-connectivity), starts TCP and UDP echo servers inside pod and
// node namespaces with Go sockets, and probes with Go sockets and ping
// (iputils). Traffic only goes to addresses inside the environment's
// namespaces. Scenarios: pod↔pod on one node and across nodes (TCP, UDP,
// ICMP), pod→node and node→pod, pod→node health endpoint, and packets at
// the pod MTU; and, when the agents serve the Policy API, an ingress
// policy (allowed by label and port, denied by label, denied by port);
// and, when they serve the Services API, a NodePort service (ClusterIP from
// a pod and a node, NodePort from another node); with several clusters,
// pod-to-pod across clusters (clustermesh).
//
// Where it runs is a driver (driver.go): a testenv environment (Run; pods
// through testenv, servers and probes in process inside the namespaces),
// or standalone hosts (RunHosts; test pods, node servers, dials and pings
// made by each node's agent through the Connectivity API, a dial tunnelled
// over a gRPC stream as a net.Conn). Scenarios a driver cannot run (the
// outside server on hosts) are reported as skipped with the reason.
//
// It depends on testenv (pods, namespaces) and the agent API (waiting for
// endpoints to propagate, and the Connectivity API on hosts).
package connectivity
