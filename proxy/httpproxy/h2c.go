package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// h2Preface is the request line and blank line that open the client
// preface of HTTP/2 with prior knowledge (h2c, RFC 9113 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\n"

func isH2Preface(hdr []byte) bool { return bytes.Equal(hdr, []byte(h2Preface)) }

// h2Protocols is HTTP/2 without TLS, with prior knowledge, only.
func h2Protocols() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}

func newH2Transport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Protocols:          h2Protocols(),
		DialContext:        dial,
		IdleConnTimeout:    90 * time.Second,
		DisableCompression: true,
	}
}

// serveH2C serves a connection that opened with the HTTP/2 preface: Go's
// HTTP/2 server frames it (malformed frames end the stream or the
// connection) and each request is decided and forwarded over h2c to the
// original destination, streaming both ways (gRPC included).
func (cc *clientConn) serveH2C(ctx context.Context) {
	cfg := &cc.p.cfg
	conn := &bufferedConn{Conn: cc.c, r: cc.br, closed: make(chan struct{})}
	srv := &http.Server{
		Handler:           http.HandlerFunc(cc.serveH2Request),
		Protocols:         h2Protocols(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	_ = srv.Serve(&oneConnListener{conn: conn})
	<-conn.closed
}

// serveH2Request decides one HTTP/2 request and forwards it or answers 403.
func (cc *clientConn) serveH2Request(w http.ResponseWriter, req *http.Request) {
	cfg := &cc.p.cfg
	start := time.Now()
	info := cc.info(req)
	d, mismatches := cc.decide(req, info, start)
	if !d.Allowed {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "Access denied")
		return
	}
	cc.p.record(cc, agentapi.L7FlowType_REQUEST, agentapi.Verdict_FORWARDED, "", info, 0, 0, mismatches)
	d.Apply(req.Header)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: cc.dst.String()})
			pr.Out.Host = pr.In.Host
		},
		Transport:     cc.h2transport,
		FlushInterval: -1, // stream: gRPC and server push of data
		ErrorLog:      log.New(io.Discard, "", 0),
		ModifyResponse: func(resp *http.Response) error {
			latency := time.Since(start)
			cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_FORWARDED, "", info, uint32(resp.StatusCode), latency, mismatches)
			cfg.Metrics.observe(req.Method, resp.StatusCode, verdictForwarded, latency)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			cc.p.log.Debug("forward request", "destination", cc.dst, "error", err)
			cc.p.record(cc, agentapi.L7FlowType_RESPONSE, agentapi.Verdict_DROPPED, reasonUpstream, info, http.StatusServiceUnavailable, time.Since(start), mismatches)
			cfg.Metrics.observe(req.Method, http.StatusServiceUnavailable, verdictForwarded, time.Since(start))
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "Service Unavailable: "+reasonUpstream)
		},
	}
	rp.ServeHTTP(w, req)
}

// bufferedConn reads what the proxy already buffered first, and tells
// when it is closed.
type bufferedConn struct {
	net.Conn
	r      *bufio.Reader
	once   sync.Once
	closed chan struct{}
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

func (c *bufferedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// oneConnListener hands one connection to an http.Server, then waits for
// it to be closed.
type oneConnListener struct {
	conn *bufferedConn
	used bool
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.conn, nil
	}
	<-l.conn.closed
	return nil, net.ErrClosed
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return l.conn.LocalAddr() }
