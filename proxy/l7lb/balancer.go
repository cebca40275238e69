package l7lb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Target is a Service port a policy sends requests to.
type Target struct {
	Namespace, Service string
	Port               int
}

func (t Target) String() string { return fmt.Sprintf("%s/%s:%d", t.Namespace, t.Service, t.Port) }

// Resolver returns the addresses of a Service port's ready backends (in
// the agent: the service table, global services' remote backends
// included).
type Resolver func(Target) ([]netip.AddrPort, error)

// maxRetryBody is the largest request body kept to send again; a larger
// one is streamed and its request tried once.
const maxRetryBody = 64 << 10

// Balancer serves HTTP by a policy.
type Balancer struct {
	p         *Policy
	resolve   Resolver
	now       func() time.Time
	transport http.RoundTripper
	re        *regexp.Regexp

	metrics *Metrics // nil: not counted
	name    string   // the document, "<namespace>/<name>", as metrics name it

	mu      sync.Mutex
	next    map[Target]int
	backend map[netip.AddrPort]*health
}

type health struct {
	failures     int
	ejectedUntil time.Time
}

// NewBalancer balances by p (a policy Parse returned) with the backends
// resolve gives. now is the clock (nil: time.Now).
func NewBalancer(p *Policy, resolve Resolver, now func() time.Time) *Balancer {
	if now == nil {
		now = time.Now
	}
	b := &Balancer{p: p, resolve: resolve, now: now, next: map[Target]int{}, backend: map[netip.AddrPort]*health{},
		transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second},
		name:      p.Metadata.Namespace + "/" + p.Metadata.Name}
	if rw := p.Spec.Rewrite; rw != nil && rw.Regex != nil {
		b.re = regexp.MustCompile(rw.Regex.Pattern)
	}
	return b
}

// CountIn makes the balancer count its requests, tries and ejections in
// m; it returns b.
func (b *Balancer) CountIn(m *Metrics) *Balancer {
	b.metrics = m
	return b
}

// Name is the document's "<namespace>/<name>".
func (b *Balancer) Name() string { return b.name }

// CloseIdleConnections closes the kept-alive connections to backends (for
// a balancer that is being replaced or stopped).
func (b *Balancer) CloseIdleConnections() {
	if t, ok := b.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Ejected lists the backends out of rotation now.
func (b *Balancer) Ejected() []netip.AddrPort {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []netip.AddrPort
	for a, h := range b.backend {
		if h.ejectedUntil.After(b.now()) {
			out = append(out, a)
		}
	}
	return out
}

func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	attempts := 1
	var perTry time.Duration
	if rt := b.p.Spec.Retries; rt != nil {
		attempts, perTry = rt.Attempts, rt.PerTryTimeout.Duration
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		buf, err := io.ReadAll(io.LimitReader(r.Body, maxRetryBody+1))
		if err != nil {
			http.Error(w, "read the request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(buf) > maxRetryBody { // too large to keep: stream it, one try
			attempts = 1
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(buf), r.Body))
		} else {
			body = buf
		}
	}
	path := b.rewrite(r.URL.Path)
	tried := map[netip.AddrPort]bool{}
	var lastErr error
	for i := range attempts {
		t := b.pick()
		addr, err := b.backendOf(t, tried)
		if err != nil {
			lastErr = err
			continue
		}
		tried[addr] = true
		ctx, cancel := context.WithCancel(r.Context())
		if perTry > 0 {
			ctx, cancel = context.WithTimeout(r.Context(), perTry)
		}
		out := r.Clone(ctx)
		out.URL.Scheme, out.URL.Host, out.URL.Path, out.URL.RawPath = "http", addr.String(), path, ""
		out.Host, out.RequestURI = r.Host, ""
		if body != nil {
			out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		}
		removeHopHeaders(out.Header)
		resp, err := b.transport.RoundTrip(out)
		failed := err != nil || resp.StatusCode >= 500
		b.metrics.try(b.name, t.Service, outcome(err, resp))
		b.record(addr, failed)
		if failed && i < attempts-1 {
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			cancel()
			lastErr = cmpErr(err, resp)
			continue
		}
		if err != nil {
			cancel()
			lastErr = err
			break
		}
		removeHopHeaders(resp.Header)
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		b.metrics.request(b.name, resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		cancel()
		return
	}
	b.metrics.request(b.name, http.StatusServiceUnavailable)
	http.Error(w, fmt.Sprintf("no backend of %s answered: %v", b.p.Spec.Service, lastErr), http.StatusServiceUnavailable)
}

func outcome(err error, resp *http.Response) string {
	switch {
	case err != nil:
		return "error"
	case resp.StatusCode >= 500:
		return "5xx"
	}
	return "ok"
}

func cmpErr(err error, resp *http.Response) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("status %d", resp.StatusCode)
}

// pick chooses a target by weight.
func (b *Balancer) pick() Target {
	ts := b.p.Spec.Backends
	n := rand.IntN(max(sumWeights(ts), 1))
	for _, t := range ts {
		if n < t.Weight {
			return Target{Namespace: b.p.Metadata.Namespace, Service: t.Service, Port: t.Port}
		}
		n -= t.Weight
	}
	t := ts[0]
	return Target{Namespace: b.p.Metadata.Namespace, Service: t.Service, Port: t.Port}
}

// backendOf chooses, round robin, a backend of t that is not ejected and
// not tried yet for this request; when every one is, any of them.
func (b *Balancer) backendOf(t Target, tried map[netip.AddrPort]bool) (netip.AddrPort, error) {
	addrs, err := b.resolve(t)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("service %s: %w", t, err)
	}
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("service %s has no ready backend", t)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	start := b.next[t]
	b.next[t]++
	for _, pass := range []func(netip.AddrPort) bool{
		func(a netip.AddrPort) bool {
			h := b.backend[a]
			return !tried[a] && (h == nil || !h.ejectedUntil.After(now))
		},
		func(a netip.AddrPort) bool { return !tried[a] },
		func(netip.AddrPort) bool { return true },
	} {
		for i := range addrs {
			if a := addrs[(start+i)%len(addrs)]; pass(a) {
				return a, nil
			}
		}
	}
	return netip.AddrPort{}, errors.New("unreachable")
}

// record counts a backend's consecutive failures and ejects it when the
// policy says so.
func (b *Balancer) record(a netip.AddrPort, failed bool) {
	o := b.p.Spec.Outlier
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.backend[a]
	if h == nil {
		h = &health{}
		b.backend[a] = h
	}
	if !failed {
		h.failures = 0
		return
	}
	h.failures++
	if o != nil && h.failures >= o.Consecutive5xx {
		h.ejectedUntil, h.failures = b.now().Add(o.EjectionTime.Duration), 0
		b.metrics.ejection(b.name)
	}
}

func (b *Balancer) rewrite(path string) string {
	rw := b.p.Spec.Rewrite
	switch {
	case rw == nil:
		return path
	case rw.Prefix != nil:
		if rest, ok := strings.CutPrefix(path, rw.Prefix.From); ok {
			return rw.Prefix.To + rest
		}
		return path
	}
	return b.re.ReplaceAllString(path, rw.Regex.Substitution)
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}
