package ingress

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"sync/atomic"
)

// Resolver returns the addresses of a Service port's ready backends.
type Resolver func(Backend) ([]netip.AddrPort, error)

// Handler serves HTTP through a routing table: each request goes to one
// backend of the Service its host and path route to (round robin), with
// X-Forwarded-For, -Host and -Proto set. No route: 404; a Service without
// ready backends, or a backend that does not answer: 503.
type Handler struct {
	table   atomic.Pointer[Table]
	resolve Resolver
	next    atomic.Uint64
	proxy   *httputil.ReverseProxy
}

type ctxKey struct{}

// NewHandler serves t, resolving backends with resolve.
func NewHandler(t *Table, resolve Resolver) *Handler {
	h := &Handler{resolve: resolve}
	h.table.Store(t)
	h.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			to := r.In.Context().Value(ctxKey{}).(netip.AddrPort)
			r.Out.URL.Scheme, r.Out.URL.Host = "http", to.String()
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			http.Error(w, "upstream unavailable: "+err.Error(), http.StatusServiceUnavailable)
		},
	}
	return h
}

// Update replaces the routing table; requests in flight keep the old one.
func (h *Handler) Update(t *Table) { h.table.Store(t) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _, ok := h.table.Load().Route(r.Host, r.URL.Path)
	if !ok {
		http.Error(w, fmt.Sprintf("no Ingress route for host %q and path %q", r.Host, r.URL.Path), http.StatusNotFound)
		return
	}
	addrs, err := h.resolve(b)
	if err != nil || len(addrs) == 0 {
		http.Error(w, fmt.Sprintf("service %s has no ready backend", b), http.StatusServiceUnavailable)
		return
	}
	to := addrs[int(h.next.Add(1)-1)%len(addrs)]
	h.proxy.ServeHTTP(w, r.WithContext(contextWith(r, to)))
}

func contextWith(r *http.Request, to netip.AddrPort) context.Context {
	return context.WithValue(r.Context(), ctxKey{}, to)
}

// Certificates loads the certificate a TLS entry names (from its Secret's
// tls.crt and tls.key, or a file on standalone hosts).
type Certificates func(TLS) (*tls.Certificate, error)

// TLSConfig terminates TLS for the hosts the Ingresses list under
// spec.tls: the certificate is chosen by the client's server name (exact
// host, then a wildcard entry); a server name no Ingress lists is refused
// in the handshake.
func (h *Handler) TLSConfig(certs Certificates) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		entry, ok := h.table.Load().TLSFor(hello.ServerName)
		if !ok {
			return nil, fmt.Errorf("no Ingress serves TLS for %q", hello.ServerName)
		}
		return certs(entry)
	}}
}
