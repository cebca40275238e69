// Package l7bench measures Weft's L7 proxy (proxy/httpproxy) against
// baselines run in the same process: the same HTTP/1.1 traffic (keep-alive
// GETs with 1 KiB responses from a net/http server on loopback, several
// concurrent clients) sent directly to the server, through a plain
// net/http/httputil.ReverseProxy, and through the L7 proxy enforcing an
// HTTP rule. Requests per second and p50/p99 latency; benchtable prints
// each as a ratio to the direct run:
//
//	go test -run '^$' -bench HTTPProxy -benchtime 20000x ./bench/l7 | go run ./bench/benchtable
//
// No datapath is involved here: "direct" stands for the L3/L4-only path,
// the proxy is reached on its own loopback listener. e2e's
// BenchmarkL7Policy measures the same traffic between two pods of a
// testenv environment, through the datapath's redirection to the agent's
// proxy, with Load, the load generator both share.
package l7bench
