package l7lb

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// server is a backend on loopback: it answers "<name> <path>" with
// status, after delay.
type server struct {
	name  string
	addr  netip.AddrPort
	hits  atomic.Int32
	mu    sync.Mutex
	code  int
	delay time.Duration
}

func start(t *testing.T, name string) *server {
	t.Helper()
	s := &server{name: name, code: http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		code, delay := s.code, s.delay
		s.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		time.Sleep(delay)
		w.WriteHeader(code)
		fmt.Fprintf(w, "%s %s %s", s.name, r.URL.Path, body)
	}))
	t.Cleanup(srv.Close)
	s.addr = netip.MustParseAddrPort(srv.Listener.Addr().String())
	return s
}

func (s *server) set(code int, delay time.Duration) {
	s.mu.Lock()
	s.code, s.delay = code, delay
	s.mu.Unlock()
}

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func do(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWeightedSplit: 90/10 between two Services over real HTTP: 1,000
// requests split within 5 points of the weights.
func TestWeightedSplit(t *testing.T) {
	v1, v2 := start(t, "v1"), start(t, "v2")
	p := mustParse(t, `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web, namespace: shop}
spec:
  service: web
  port: 80
  backends:
  - {service: web-v1, weight: 90}
  - {service: web-v2, weight: 10}`)
	backends := map[string][]netip.AddrPort{"shop/web-v1:80": {v1.addr}, "shop/web-v2:80": {v2.addr}}
	front := httptest.NewServer(NewBalancer(p, func(t Target) ([]netip.AddrPort, error) { return backends[t.String()], nil }, nil))
	defer front.Close()
	for range 1000 {
		if code, body := do(t, front.URL+"/", ""); code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
	}
	if n := v2.hits.Load(); n < 50 || n > 150 || v1.hits.Load()+n != 1000 {
		t.Errorf("v1 got %d, v2 %d of 1000; want about 900 and 100", v1.hits.Load(), n)
	}
}

// TestRetriesAndEjection: a backend answering 503 is retried on another
// (the client sees 200 and the body it sent), a slow one is cut off after
// the per-try timeout and retried, three failures in a row eject a backend
// for the ejection time, and with every try failing the client gets the
// last 5xx.
func TestRetriesAndEjection(t *testing.T) {
	a, b := start(t, "a"), start(t, "b")
	p := mustParse(t, `apiVersion: weft.io/v1
kind: L7LoadBalancing
metadata: {name: web}
spec:
  service: web
  port: 8080
  retries: {attempts: 2, perTryTimeout: 300ms}
  outlierDetection: {consecutive5xx: 3, ejectionTime: 30s}`)
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var clock sync.Mutex
	lb := NewBalancer(p, func(Target) ([]netip.AddrPort, error) { return []netip.AddrPort{a.addr, b.addr}, nil },
		func() time.Time { clock.Lock(); defer clock.Unlock(); return now })
	front := httptest.NewServer(lb)
	defer front.Close()

	a.set(http.StatusServiceUnavailable, 0)
	for i := range 4 {
		code, body := do(t, front.URL+"/x", "payload")
		if code != http.StatusOK || body != "b /x payload" {
			t.Fatalf("request %d with a failing: %d %q; want b's answer with the body resent", i, code, body)
		}
	}
	if got := lb.Ejected(); len(got) != 1 || got[0] != a.addr {
		t.Errorf("ejected %v; want a after 3 failures in a row", got)
	}
	hitsA := a.hits.Load()
	for range 4 {
		do(t, front.URL+"/x", "")
	}
	if a.hits.Load() != hitsA {
		t.Errorf("an ejected backend got %d requests", a.hits.Load()-hitsA)
	}
	clock.Lock()
	now = now.Add(31 * time.Second)
	clock.Unlock()
	a.set(http.StatusOK, 0)
	for range 4 {
		do(t, front.URL+"/x", "")
	}
	if a.hits.Load() == hitsA {
		t.Error("a backend is not back after the ejection time")
	}

	b.set(http.StatusOK, time.Second) // slower than the per-try timeout
	for range 4 {
		if code, body := do(t, front.URL+"/slow", ""); code != http.StatusOK || !strings.HasPrefix(body, "a /slow") {
			t.Errorf("with b too slow: %d %q; want a's answer", code, body)
		}
	}
	a.set(http.StatusInternalServerError, 0)
	b.set(http.StatusBadGateway, 0)
	if code, body := do(t, front.URL+"/", ""); code < 500 || !(strings.HasPrefix(body, "a ") || strings.HasPrefix(body, "b ")) {
		t.Errorf("every try failing: %d %q; want the last backend's 5xx", code, body)
	}
}

// TestRewrite: prefix and regex path rewrites reach the backend.
func TestRewrite(t *testing.T) {
	s := start(t, "s")
	for doc, cases := range map[string]map[string]string{
		"prefix: {from: /old, to: /new}":                          {"/old/x": "/new/x", "/other": "/other"},
		`regex: {pattern: "^/api/v1/(.*)$", substitution: "/$1"}`: {"/api/v1/users": "/users", "/api/v2/x": "/api/v2/x"},
	} {
		p := mustParse(t, "apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: web}\nspec:\n  service: web\n  port: 80\n  rewrite:\n    "+doc)
		front := httptest.NewServer(NewBalancer(p, func(Target) ([]netip.AddrPort, error) { return []netip.AddrPort{s.addr}, nil }, nil))
		for in, want := range cases {
			if _, body := do(t, front.URL+in, ""); body != "s "+want+" " {
				t.Errorf("%s: %s reached the backend as %q, want %s", doc, in, body, want)
			}
		}
		front.Close()
	}
}

// TestRefused: a bad document is refused whole, every problem named.
func TestRefused(t *testing.T) {
	for doc, want := range map[string][]string{
		"kind: Other\napiVersion: v9\nmetadata: {name: x}\nspec: {service: web, port: 80}":                                                                            {`kind "Other"`, "want weft.io/v1, L7LoadBalancing"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: Web_1, port: 0}":                                                         {`spec.service: name "Web_1"`, "spec.port 0: want 1-65535"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, backends: [{service: a, weight: 0}]}":                     {"every weight is 0"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, retries: {attempts: 9}}":                                  {"spec.retries.attempts 9: want 1-5"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, retries: {attempts: 2, perTryTimeout: soon}}":             {`"soon": want a duration`},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, rewrite: {regex: {pattern: \"(\", substitution: x}}}":     {"not a regular expression"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, rewrite: {}}":                                             {"exactly one of prefix and regex"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, outlierDetection: {consecutive5xx: 0, ejectionTime: 0s}}": {"consecutive5xx 0", "ejectionTime 0s"},
		"apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, weights: {}}":                                             {`unknown field "weights"`},
	} {
		_, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("%s: accepted", doc)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v; want it to say %q", doc, err, w)
			}
		}
	}
}

// FuzzParse: no document makes Parse panic; an accepted one has a target
// with a positive weight and a balancer can be built from it.
func FuzzParse(f *testing.F) {
	f.Add([]byte("apiVersion: weft.io/v1\nkind: L7LoadBalancing\nmetadata: {name: x}\nspec: {service: web, port: 80, rewrite: {regex: {pattern: a, substitution: b}}}"))
	f.Add([]byte("spec: {backends: [{weight: -1}]}"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		if sumWeights(p.Spec.Backends) <= 0 {
			t.Fatalf("accepted %q with no positive weight", doc)
		}
		NewBalancer(p, func(Target) ([]netip.AddrPort, error) { return nil, nil }, nil)
	})
}
