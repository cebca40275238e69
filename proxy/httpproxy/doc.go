// Package httpproxy is Weft's HTTP/1.1 and h2c L7 proxy: it reads
// requests from connections the datapath hands it (or any net.Listener),
// decides each
// with the policy.HTTPMatcher of the (endpoint, port, direction) it
// serves, forwards allowed requests to the connection's original
// destination and answers denied ones 403 "Access denied".
//
// Requests are framed strictly before anything is forwarded: a header
// block over the limit, both Content-Length and Transfer-Encoding, a
// transfer coding other than chunked, several Content-Length headers,
// obsolete line folding, bad chunking or anything net/http cannot parse is
// answered 400 and the connection closed. A connection opening with the
// HTTP/2 preface is served by net/http's HTTP/2 server and forwarded over
// h2c (h2c.go). A chunked body is read whole (up to a limit) before the
// request is forwarded, so a body whose chunking turns out bad is never
// sent on.
//
// Every request and response becomes a flow record with an L7 part
// (agentapi.FlowL7) written to a Sink (the node's flow.Ring), and is
// counted in Prometheus metrics (requests by method, code and verdict;
// latency).
//
// It depends on policy (the matcher), flow (records, enrichment) and
// api/agentapi; it knows nothing of BPF: the datapath decides which
// connections reach it.
package httpproxy
