package connectivity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// The L7 tests: HTTP rules on the echo pods' HTTP port (httpPort), which
// the datapath hands to the L7 proxy of the node that enforces them (the
// echo's for ingress, the client's for egress). An allowed request is
// answered by the echo pod's HTTP server, a denied one by the proxy with
// 403 "Access denied"; both leave an http-request record.
func l7Tests() []policyTest {
	httpPortRule := func(rules string) string {
		return fmt.Sprintf("  toPorts: [{ports: [{port: \"%d\", protocol: TCP}], rules: {http: [%s]}}]", httpPort, rules)
	}
	return []policyTest{
		{
			name: "echo-ingress-l7", what: "ingress HTTP rules on echo: client2 may GET / on its HTTP port (through the L7 proxy of echo's node); other paths and methods get 403 Access denied, client is not connected at all",
			docs:    cnp("weft-cx-echo-ingress-l7", "endpointSelector: {"+echoSel+"}\ningress:\n- fromEndpoints: [{"+client2Sel+"}]\n"+httpPortRule(`{method: GET, path: "/"}`)),
			enforce: map[string]direction{"echo": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod-with-endpoints/http-get-root/"+pair(x, p), fx.allowedHTTP(x, p, http.MethodGet, "/"))
				add("pod-to-pod-with-endpoints/http-get-private-denied/"+pair(x, p), fx.deniedHTTP("echo-ingress-l7", x, p, http.MethodGet, "/private"))
				add("pod-to-pod-with-endpoints/http-post-root-denied/"+pair(x, p), fx.deniedHTTP("echo-ingress-l7", x, p, http.MethodPost, "/"))
				add("pod-to-pod-denied-label/http/"+pair(a, p), fx.deniedHTTPConnect("echo-ingress-l7", a, p))
			},
		},
		{
			name: "client-egress-l7", what: "egress HTTP rules on client2: it may GET / on echo's HTTP port (through the L7 proxy of its own node), other paths get 403 Access denied, other pods are not reachable; client, which the policy does not select, is not affected",
			docs:    cnp("weft-cx-client-egress-l7", "endpointSelector: {"+client2Sel+"}\negress:\n- toEndpoints: [{"+echoSel+"}]\n"+httpPortRule(`{method: GET, path: "/"}`)),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod-with-l7/http-get-root/"+pair(x, p), fx.allowedHTTP(x, p, http.MethodGet, "/"))
				add("pod-to-pod-with-l7/http-get-private-denied/"+pair(x, p), fx.deniedHTTP("client-egress-l7", x, p, http.MethodGet, "/private"))
				add("pod-to-pod-denied-label/http/"+pair(x, a), fx.deniedHTTPConnect("client-egress-l7", x, a))
				add("unselected-client/http/"+pair(a, p), fx.allowedHTTPDirect(a, p, http.MethodGet, "/private"))
			},
		},
		{
			name: "client-egress-l7-method", what: "egress HTTP rules by method on client2: POST /public and /private on echo's HTTP port pass, GET of the same paths and other paths get 403 Access denied",
			docs: cnp("weft-cx-client-egress-l7-method", "endpointSelector: {"+client2Sel+"}\negress:\n- toEndpoints: [{"+echoSel+"}]\n"+
				httpPortRule(`{method: POST, path: "/public"}, {method: POST, path: "/private"}`)),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x := *cl.protected, *cl.other
				add("pod-to-pod-with-l7/http-post-public/"+pair(x, p), fx.allowedHTTP(x, p, http.MethodPost, "/public"))
				add("pod-to-pod-with-l7/http-post-private/"+pair(x, p), fx.allowedHTTP(x, p, http.MethodPost, "/private"))
				add("pod-to-pod-with-l7/http-get-public-denied/"+pair(x, p), fx.deniedHTTP("client-egress-l7-method", x, p, http.MethodGet, "/public"))
				add("pod-to-pod-with-l7/http-post-other-denied/"+pair(x, p), fx.deniedHTTP("client-egress-l7-method", x, p, http.MethodPost, "/admin"))
			},
		},
	}
}

// allowedHTTP is a request through the L7 proxy that must be answered by
// dst's HTTP server, recorded as a forwarded http-request.
func (fx *fixture) allowedHTTP(src, dst endpoint, method, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		if err := fx.expectHTTP(ctx, src, dst, method, path, http.StatusOK, fmt.Sprintf("%s %s at %s", method, path, dst.name)); err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: httpPort, verdict: agentapi.Verdict_FORWARDED, method: method, path: path})
	}
}

// allowedHTTPDirect is a request no HTTP rule applies to: answered by
// dst's server, recorded as a forwarded connection.
func (fx *fixture) allowedHTTPDirect(src, dst endpoint, method, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		if err := fx.expectHTTP(ctx, src, dst, method, path, http.StatusOK, fmt.Sprintf("%s %s at %s", method, path, dst.name)); err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: httpPort, verdict: agentapi.Verdict_FORWARDED})
	}
}

// deniedHTTP is a request the HTTP rules deny: the connection is allowed,
// the proxy answers 403 "Access denied" and records a dropped
// http-request.
func (fx *fixture) deniedHTTP(test string, src, dst endpoint, method, path string) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		if err := fx.expectHTTP(ctx, src, dst, method, path, http.StatusForbidden, "Access denied"); err != nil {
			return fmt.Errorf("%w; the policy of test %s:\n%s", err, test, strings.TrimSpace(policyTestDocs(test)))
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: httpPort, verdict: agentapi.Verdict_DROPPED, reason: "policy denied", method: method, path: path})
	}
}

// deniedHTTPConnect is a connection to dst's HTTP port the policy drops at
// L3/L4: no answer at all.
func (fx *fixture) deniedHTTPConnect(test string, src, dst endpoint) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := fx.expectDenied(test, fmt.Sprintf("TCP connection from %s to %s port %d", src, dst, httpPort), func() error {
			_, _, err := fx.probeHTTP(pctx, src, dst, http.MethodGet, "/")
			return err
		})
		if err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: httpPort, verdict: agentapi.Verdict_DROPPED, reason: "policy denied"})
	}
}

// expectHTTP sends method path from src to dst's HTTP port and checks the
// status and the first line of the body.
func (fx *fixture) expectHTTP(ctx context.Context, src, dst endpoint, method, path string, status int, body string) error {
	what := fmt.Sprintf("HTTP %s %s from %s to %s port %d", method, path, src, dst, httpPort)
	got, gotBody, err := fx.probeHTTP(ctx, src, dst, method, path)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if got != status || gotBody != body {
		return fmt.Errorf("%s: got %d %q, expected %d %q", what, got, gotBody, status, body)
	}
	return nil
}

// probeHTTP sends one request on a new connection from src to dst's HTTP
// echo server and returns the status and the body's first line.
func (fx *fixture) probeHTTP(ctx context.Context, src, dst endpoint, method, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout)
	defer cancel()
	hc := fx.httpClient(src)
	url := fmt.Sprintf("http://%s%s", netip.AddrPortFrom(dst.ip, httpPort), path)
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return 0, "", fmt.Errorf("read the body of the %s answer: %w", resp.Status, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return resp.StatusCode, strings.TrimSpace(first), nil
}
