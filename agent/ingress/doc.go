// Package ingress serves a node's share of the cluster's Ingresses: it
// watches the Ingress and certificate records of its cluster
// (state/ingresses/v1, state/ingress-secrets/v1, written by `weft ingress
// apply` or the apiserver's Kubernetes source), builds the routing table
// of proxy/ingress from them, and serves HTTP and HTTPS on the node's
// address (ports 80 and 443 by default), proxying each request to a ready
// backend of the routed Service as this node's service component knows
// them. It also serves agentapi.IngressesServer, which checks and writes
// the records.
//
// It depends on kvstore, state/records, state/watchstore and proxy/ingress,
// and through small interfaces on the service component (backends) and the
// node table (the addresses an Ingress is reachable at).
package ingress
