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
// It depends on testenv (pods, namespaces) and the agent API (waiting for
// endpoints to propagate).
package connectivity
