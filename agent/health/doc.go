// Package health is node-to-node health checking: every agent answers
// GET /healthz on its node address (Serve) and probes the other nodes'
// endpoints periodically (Prober); `weft status` shows the results.
//
// It depends on state/records (node records) only.
package health
