// Package relay merges the flows of many agents into one stream: it serves
// the same agentapi.Observer service as an agent, and for each request
// opens that request (filters included, so agents filter at the source) on
// every agent it knows, over TCP with mutual TLS, and sends the flows on
// in time order. An agent that cannot be reached, or whose stream breaks,
// is reported to the reader as a NodeStatus message (and in ServerStatus),
// never silently skipped; a following reader gets it back, without
// duplicates, once it reconnects.
//
// Ordering: each agent's flows come in time order; the merge holds a flow
// until every connected agent has sent one at least as old, or until it
// has waited Config.MaxDelay, so a quiet agent delays others by at most
// that much.
//
// It depends on api/agentapi, and on flow to check filters before asking
// any agent. weft-apiserver (or a weft-relay
// program) owns one, given the agents' flow addresses and the relay's
// client certificate.
package relay
