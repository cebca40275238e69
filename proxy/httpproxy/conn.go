package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// ServeConn serves the requests of one client connection and closes it.
// It never panics on what the client sends.
func (p *Proxy) ServeConn(ctx context.Context, c net.Conn) {
	defer c.Close()
	defer func() {
		if r := recover(); r != nil {
			p.log.Error("connection handler panicked", "client", c.RemoteAddr(), "panic", r)
		}
	}()
	dst, err := p.cfg.Destination(c)
	if err != nil {
		p.log.Warn("drop connection", "error", err)
		return
	}
	src, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	cc := &clientConn{p: p, c: c, src: src, dst: dst, transport: p.transport, h2transport: p.h2transport,
		br: bufio.NewReaderSize(c, p.cfg.MaxHeaderBytes), bw: bufio.NewWriter(c)}
	if dialFrom := p.cfg.DialFrom; dialFrom != nil {
		// Upstream connections of this client only, from its address.
		dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialFrom(ctx, src.Addr(), network, addr)
		}
		cc.transport, cc.h2transport = newTransport(dial), newH2Transport(dial)
		defer cc.transport.CloseIdleConnections()
		defer cc.h2transport.CloseIdleConnections()
	}
	defer cc.closeUpstream()
	for cc.serveOne(ctx) {
	}
}

// clientConn is one client connection and where it was going.
type clientConn struct {
	p        *Proxy
	c        net.Conn
	src, dst netip.AddrPort
	// transport and h2transport reach the destination (the proxy's, or
	// this connection's own with Config.DialFrom).
	transport, h2transport *http.Transport
	// up is this connection's upstream connection for requests without a
	// body (upstream.go); nil until the first.
	up *upstream
	br *bufio.Reader
	bw *bufio.Writer
	// requests counts the requests read so far: only the first may open
	// HTTP/2.
	requests int
}

// serveOne reads and answers one request; false: close the connection.
func (cc *clientConn) serveOne(ctx context.Context) bool {
	cfg := &cc.p.cfg
	_ = cc.c.SetReadDeadline(time.Now().Add(cfg.IdleTimeout))
	if _, err := cc.br.Peek(1); err != nil {
		return false // closed, idle or reset: nothing to answer
	}
	_ = cc.c.SetReadDeadline(time.Now().Add(cfg.ReadHeaderTimeout))
	start := time.Now()
	hdr, err := peekHeader(cc.br, cfg.MaxHeaderBytes)
	if err == nil && cc.requests == 0 && isH2Preface(hdr) {
		_ = cc.c.SetReadDeadline(time.Time{})
		cc.serveH2C(ctx)
		return false
	}
	cc.requests++
	if err == nil {
		err = checkFraming(hdr)
	}
	var req *http.Request
	if err == nil {
		req, err = http.ReadRequest(cc.br)
	}
	if err == nil && req.ProtoMajor != 1 {
		err = fmt.Errorf("%s is not supported; accepted are HTTP/1.x and HTTP/2 with prior knowledge (h2c)", req.Proto)
	}
	if err != nil {
		if isTimeout(err) || errors.Is(err, io.EOF) && len(hdr) == 0 {
			return false
		}
		cc.malformed(req, start, err)
		return false
	}
	_ = cc.c.SetReadDeadline(time.Time{})
	return cc.handle(ctx, req, start)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// malformed answers a request that cannot be framed or parsed 400 and
// records it as dropped.
func (cc *clientConn) malformed(req *http.Request, start time.Time, err error) {
	info := httpInfo{Protocol: "HTTP/1.1"}
	if req != nil {
		info = cc.info(req)
	}
	cc.p.record(cc, agentapi.L7FlowType_REQUEST, agentapi.Verdict_DROPPED, reasonMalformed, info, 0, 0, nil)
	cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, "", info, http.StatusBadRequest, time.Since(start), nil)
	cc.p.cfg.Metrics.observe(info.Method, http.StatusBadRequest, verdictMalformed, time.Since(start))
	cc.writeError(http.StatusBadRequest, "Bad Request: "+err.Error(), true)
}

// Drop reasons of the proxy's records.
const (
	reasonMalformed = "malformed HTTP request"
	reasonPolicy    = "policy denied"
	reasonUpstream  = "upstream unavailable"
)

// handle decides req and answers it; false: close the connection.
func (cc *clientConn) handle(ctx context.Context, req *http.Request, start time.Time) bool {
	cfg := &cc.p.cfg
	info := cc.info(req)
	d, mismatches := cc.decide(req, info, start)
	hasBody := req.ContentLength != 0
	if !d.Allowed {
		// A body would have to be read to keep the connection: close it.
		closing := req.Close || hasBody
		cc.writeError(http.StatusForbidden, "Access denied", closing)
		return !closing
	}
	if hasBody && strings.EqualFold(req.Header.Get("Expect"), "100-continue") {
		if _, err := io.WriteString(cc.c, "HTTP/1.1 100 Continue\r\n\r\n"); err != nil {
			return false
		}
	}
	req.Header.Del("Expect")
	if len(req.TransferEncoding) > 0 {
		if err := bufferChunked(req, cfg.MaxChunkedBodyBytes); err != nil {
			if errors.Is(err, errBodyTooLarge) {
				cc.p.record(cc, agentapi.L7FlowType_REQUEST, agentapi.Verdict_DROPPED, "request body too large", info, 0, 0, nil)
				cfg.Metrics.observe(req.Method, http.StatusRequestEntityTooLarge, verdictMalformed, time.Since(start))
				cc.writeError(http.StatusRequestEntityTooLarge, "Request Entity Too Large", true)
				return false
			}
			cc.malformed(req, start, err)
			return false
		}
	}
	cc.p.record(cc, agentapi.L7FlowType_REQUEST, agentapi.Verdict_FORWARDED, "", info, 0, 0, mismatches)
	d.Apply(req.Header)
	body := &eofReader{r: req.Body}
	req.Body = body
	// A body the upstream did not read to its end is still on the
	// connection, where it would be taken for the next request: close.
	return cc.forward(ctx, req, info, start, mismatches) && (!hasBody || body.eof.Load())
}

// eofReader tells whether its reader was read to the end.
type eofReader struct {
	r   io.ReadCloser
	eof atomic.Bool
}

func (e *eofReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err == io.EOF {
		e.eof.Store(true)
	}
	return n, err
}

func (e *eofReader) Close() error { return e.r.Close() }

// decide matches req against the rules. It records a denied request with
// its 403 response (the caller sends it); for an allowed one it returns
// the mismatch actions as records name them, and the caller records the
// request once its body is known to be well framed.
func (cc *clientConn) decide(req *http.Request, info httpInfo, start time.Time) (policy.HTTPDecision, []string) {
	cfg := &cc.p.cfg
	var d policy.HTTPDecision
	if m := cc.matcher(); m != nil {
		d = m.Match(policy.HTTPRequest{Method: req.Method, Path: req.RequestURI, Host: req.Host, Header: req.Header})
	}
	if !d.Allowed {
		cc.p.record(cc, agentapi.L7FlowType_REQUEST, agentapi.Verdict_DROPPED, reasonPolicy, info, 0, 0, nil)
		cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, "", info, http.StatusForbidden, time.Since(start), nil)
		cfg.Metrics.observe(req.Method, http.StatusForbidden, verdictDenied, time.Since(start))
		return d, nil
	}
	mismatches := make([]string, len(d.Actions))
	for i, a := range d.Actions {
		mismatches[i] = string(a.Mismatch) + " " + a.Name
	}
	return d, mismatches
}

// matcher is the rules for this connection's peer.
func (cc *clientConn) matcher() *policy.HTTPMatcher {
	cfg := &cc.p.cfg
	pol := cfg.Policy
	peer, local := cc.src, cc.dst
	if cfg.Direction == agentapi.Direction_EGRESS {
		peer, local = cc.dst, cc.src
	}
	if cfg.Policies != nil {
		if pol = cfg.Policies(local.Addr(), cc.dst.Port()); pol == nil {
			return nil // no rules for this endpoint and port: deny
		}
	}
	if pol == nil {
		return cfg.Matcher
	}
	id := records.IDWorld
	if cfg.Peers != nil {
		if ep, ok := cfg.Peers.LookupIP(peer.Addr()); ok && ep.Identity != 0 {
			id = records.ID(ep.Identity)
		}
	}
	return pol.Matcher(id)
}

// forward sends req to the original destination and its response back.
func (cc *clientConn) forward(ctx context.Context, req *http.Request, info httpInfo, start time.Time, mismatches []string) bool {
	clientClose := req.Close
	out := req.WithContext(ctx)
	out.URL.Scheme, out.URL.Host = "http", cc.dst.String()
	out.RequestURI, out.Close = "", false
	removeHopByHop(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // as the client sent it: none
	}
	var resp *http.Response
	var err error
	// Without a body: the connection's own upstream connection.
	direct := req.ContentLength == 0 && len(req.TransferEncoding) == 0
	if direct {
		resp, err = cc.roundTripDirect(ctx, out)
	} else {
		resp, err = cc.transport.RoundTrip(out)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		cc.p.log.Debug("forward request", "destination", cc.dst, "error", err)
		cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_DROPPED, reasonUpstream, info, http.StatusServiceUnavailable, time.Since(start), mismatches)
		cc.p.cfg.Metrics.observe(req.Method, http.StatusServiceUnavailable, verdictForwarded, time.Since(start))
		cc.writeError(http.StatusServiceUnavailable, "Service Unavailable: "+reasonUpstream, true)
		return false
	}
	defer resp.Body.Close()
	upstreamClose := resp.Close // the destination closes its connection after it
	latency := time.Since(start)
	removeHopByHop(resp.Header)
	resp.Proto, resp.ProtoMajor, resp.ProtoMinor = "HTTP/1.1", 1, 1
	resp.Close = clientClose
	if resp.ContentLength < 0 && bodyAllowed(req.Method, resp.StatusCode) {
		resp.TransferEncoding = []string{"chunked"}
	}
	cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, "", info, uint32(resp.StatusCode), latency, mismatches)
	cc.p.cfg.Metrics.observe(req.Method, resp.StatusCode, verdictForwarded, latency)
	if err := resp.Write(cc.bw); err != nil {
		if direct {
			cc.closeUpstream() // the body may be left on it
		}
		return false
	}
	if direct && upstreamClose {
		cc.closeUpstream()
	}
	if err := cc.bw.Flush(); err != nil {
		return false
	}
	return !clientClose && !resp.Close
}

func bodyAllowed(method string, code int) bool {
	return method != http.MethodHead && code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

// writeError answers with a short text body.
func (cc *clientConn) writeError(code int, body string, closing bool) {
	conn := "keep-alive"
	if closing {
		conn = "close"
	}
	fmt.Fprintf(cc.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n%s",
		code, http.StatusText(code), len(body), conn, body)
	_ = cc.bw.Flush()
}
