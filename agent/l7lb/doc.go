// Package l7lb is the agent's L7 load-balancing component: it watches the
// cluster's L7LoadBalancing records (state/l7lb/v1/<cluster>/), runs one
// HTTP listener per document on the node's address, served by a
// proxy/l7lb Balancer whose backends are the node's service table (global
// services' remote backends included), and points the selected Service
// port's ClusterIP at that listener, so that the socket load balancer
// sends the node's pods there. It serves agentapi.L7LoadBalancingServer,
// which validates and writes the documents.
//
// It depends on kvstore, state/records, state/watchstore, proxy/l7lb and,
// through a small interface, on agent/services (redirects and backends).
package l7lb
