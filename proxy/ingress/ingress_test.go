package ingress

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

func parse(t testing.TB, docs string) []networkingv1.Ingress {
	t.Helper()
	var out []networkingv1.Ingress
	for _, doc := range strings.Split(docs, "\n---\n") {
		var ing networkingv1.Ingress
		if err := yaml.UnmarshalStrict([]byte(doc), &ing); err != nil {
			t.Fatalf("parse %s: %v", doc, err)
		}
		out = append(out, ing)
	}
	return out
}

// The path-routing example: /foo to foo-app, /bar to bar-app, both on
// port 5678.
const fooBar = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: example-ingress
  namespace: default
spec:
  ingressClassName: weft
  rules:
  - http:
      paths:
      - pathType: Prefix
        path: /foo
        backend:
          service:
            name: foo-app
            port:
              number: 5678
      - pathType: Prefix
        path: /bar
        backend:
          service:
            name: bar-app
            port:
              number: 5678`

// backend is an HTTP server on loopback answering with its name and the
// X-Forwarded-For it got.
func backend(t *testing.T, name string) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.URL.Path, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

func get(t *testing.T, url, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestFooBar: the example routes over real HTTP: /foo and its sub-paths to
// foo-app, /bar to bar-app, anything else 404; a Service without backends
// gives 503; two backends share the requests; X-Forwarded-For is set.
func TestFooBar(t *testing.T) {
	table, err := Build(parse(t, fooBar))
	if err != nil {
		t.Fatal(err)
	}
	backends := map[string][]netip.AddrPort{
		"default/foo-app:5678": {backend(t, "foo-1"), backend(t, "foo-2")},
		"default/bar-app:5678": {backend(t, "bar-1")},
	}
	front := httptest.NewServer(NewHandler(table, func(b Backend) ([]netip.AddrPort, error) { return backends[b.String()], nil }))
	defer front.Close()

	seen := map[string]bool{}
	for range 4 {
		code, body := get(t, front.URL+"/foo", "example.com")
		if code != http.StatusOK || !strings.HasPrefix(body, "foo-") || !strings.HasSuffix(body, " /foo 127.0.0.1") {
			t.Fatalf("/foo: %d %q; want foo-app with X-Forwarded-For 127.0.0.1", code, body)
		}
		seen[strings.Fields(body)[0]] = true
	}
	if !seen["foo-1"] || !seen["foo-2"] {
		t.Errorf("4 requests reached %v; want both foo-app backends", seen)
	}
	for path, want := range map[string]string{"/foo/x": "foo-", "/foo/": "foo-", "/bar": "bar-1", "/bar/x/y": "bar-1"} {
		if code, body := get(t, front.URL+path, "example.com"); code != http.StatusOK || !strings.HasPrefix(body, want) {
			t.Errorf("%s: %d %q, want %s", path, code, body, want)
		}
	}
	for _, path := range []string{"/", "/foobar", "/baz", "/Foo"} {
		if code, body := get(t, front.URL+path, "example.com"); code != http.StatusNotFound || !strings.Contains(body, "no Ingress route") {
			t.Errorf("%s: %d %q; want 404", path, code, body)
		}
	}
	backends["default/bar-app:5678"] = nil
	if code, body := get(t, front.URL+"/bar", "example.com"); code != http.StatusServiceUnavailable || !strings.Contains(body, "default/bar-app:5678 has no ready backend") {
		t.Errorf("/bar without backends: %d %q; want 503 naming the service", code, body)
	}
	l, _ := net.Listen("tcp4", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	backends["default/bar-app:5678"] = []netip.AddrPort{dead}
	if code, _ := get(t, front.URL+"/bar", "example.com"); code != http.StatusServiceUnavailable {
		t.Errorf("/bar with a backend that refuses: %d; want 503", code)
	}
}

// TestMatching: Kubernetes' rules for hosts and paths.
func TestMatching(t *testing.T) {
	pt := func(p networkingv1.PathType) *networkingv1.PathType { return &p }
	rule := func(host, path string, typ networkingv1.PathType, svc string) networkingv1.IngressRule {
		return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
			Paths: []networkingv1.HTTPIngressPath{{Path: path, PathType: pt(typ), Backend: networkingv1.IngressBackend{
				Service: &networkingv1.IngressServiceBackend{Name: svc, Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}
	}
	class := ClassName
	other := "nginx"
	ings := []networkingv1.Ingress{
		{Spec: networkingv1.IngressSpec{IngressClassName: &class, Rules: []networkingv1.IngressRule{
			rule("", "/", networkingv1.PathTypePrefix, "root"),
			rule("", "/aaa/bbb", networkingv1.PathTypePrefix, "aaa-bbb"),
			rule("", "/aaa/bbb/", networkingv1.PathTypeExact, "exact-slash"),
			rule("", "/aaa", networkingv1.PathTypePrefix, "aaa"),
			rule("", "/exact", networkingv1.PathTypeExact, "exact"),
			rule("foo.bar.com", "/", networkingv1.PathTypePrefix, "foo-bar"),
			rule("*.bar.com", "/", networkingv1.PathTypePrefix, "any-bar"),
		}}},
		{Spec: networkingv1.IngressSpec{IngressClassName: &other, Rules: []networkingv1.IngressRule{rule("", "/nginx", networkingv1.PathTypePrefix, "nginx")}}},
	}
	table, err := Build(ings)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, path, want string }{
		{"x.com", "/", "root"}, {"x.com", "/aaa/bbb", "aaa-bbb"}, {"x.com", "/aaa/bbb/ccc", "aaa-bbb"},
		{"x.com", "/aaa/bbbxyz", "aaa"}, {"x.com", "/aaa/bbb/", "exact-slash"}, {"x.com", "/aaa", "aaa"},
		{"x.com", "/exact", "exact"}, {"x.com", "/exact/", "root"}, {"x.com", "/nginx", "root"},
		{"foo.bar.com", "/aaa", "foo-bar"}, {"FOO.bar.com:8080", "/", "foo-bar"}, {"baz.bar.com", "/", "any-bar"},
		{"a.baz.bar.com", "/", "root"}, {"bar.com", "/", "root"},
	} {
		b, _, ok := table.Route(tc.host, tc.path)
		if !ok || b.Service != tc.want {
			t.Errorf("Route(%s, %s) = %v %v; want %s", tc.host, tc.path, b, ok, tc.want)
		}
	}
	if _, _, ok := (&Table{}).Route("x", "/"); ok {
		t.Error("an empty table routes")
	}
}

// TestRefused: a bad Ingress is refused whole, naming it and the field.
func TestRefused(t *testing.T) {
	for name, tc := range map[string]struct{ edit, want string }{
		"relative path":    {`path: /foo`, `paths[0].path "foo": want an absolute path`},
		"no path type":     {`pathType: Prefix`, `paths[0].pathType: required`},
		"bad path type":    {`pathType: Prefix`, `pathType "Regex": want Exact, Prefix or ImplementationSpecific`},
		"no port":          {`number: 5678`, `service foo-app: port.number or port.name required`},
		"resource backend": {`service:`, `resource backends (StorageBucket static) are not served by Weft`},
		"bad host":         {`- http:`, `spec.rules[0].host "foo_bar.com"`},
	} {
		doc := fooBar
		switch name {
		case "relative path":
			doc = strings.Replace(doc, "path: /foo", "path: foo", 1)
		case "no path type":
			doc = strings.Replace(doc, "      - pathType: Prefix\n        path: /foo", "      - path: /foo", 1)
		case "bad path type":
			doc = strings.Replace(doc, "pathType: Prefix", "pathType: Regex", 1)
		case "no port":
			doc = strings.Replace(doc, "port:\n              number: 5678", "port: {}", 1)
		case "resource backend":
			doc = strings.Replace(doc, "service:\n            name: foo-app\n            port:\n              number: 5678",
				"resource: {apiGroup: k8s.example.com, kind: StorageBucket, name: static}", 1)
		case "bad host":
			doc = strings.Replace(doc, "  - http:", "  - host: foo_bar.com\n    http:", 1)
		}
		_, err := Build(parse(t, doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ingress default/example-ingress") {
			t.Errorf("%s: %v; want a refusal naming the Ingress and %q", name, err, tc.want)
		}
	}
}

// FuzzRoute: no host or path makes routing panic, and a route found for a
// path is one the path matches.
func FuzzRoute(f *testing.F) {
	table, err := Build(parse(f, fooBar))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"/foo", "/foo/", "/foobar", "", "//", "/bar/../foo"} {
		f.Add("example.com:80", s)
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		b, _, ok := table.Route(host, path)
		if ok && !strings.HasPrefix(path, "/"+strings.TrimSuffix(b.Service, "-app")) {
			t.Fatalf("Route(%q, %q) = %v", host, path, b)
		}
	})
}

// TestTLS: TLS is terminated with the certificate of the Secret the
// Ingress names for the client's server name; the request is then routed
// as plain HTTP; a server name no Ingress lists fails the handshake.
func TestTLS(t *testing.T) {
	doc := strings.Replace(fooBar, "spec:\n", "spec:\n  tls:\n  - hosts: [shop.example.com]\n    secretName: shop-tls\n", 1)
	table, err := Build(parse(t, doc))
	if err != nil {
		t.Fatal(err)
	}
	foo := backend(t, "foo-1")
	h := NewHandler(table, func(Backend) ([]netip.AddrPort, error) { return []netip.AddrPort{foo}, nil })
	cert, pool := selfSigned(t, "shop.example.com")
	var asked []TLS
	front := httptest.NewUnstartedServer(h)
	front.TLS = h.TLSConfig(func(e TLS) (*tls.Certificate, error) { asked = append(asked, e); return &cert, nil })
	front.StartTLS()
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "shop.example.com"}}}
	resp, err := client.Get(front.URL + "/foo")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "foo-1 /foo") {
		t.Errorf("https /foo: %d %q", resp.StatusCode, body)
	}
	if len(asked) != 1 || asked[0] != (TLS{Namespace: "default", SecretName: "shop-tls"}) {
		t.Errorf("certificates asked for %v; want default/shop-tls", asked)
	}
	other := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "other.example.com"}}}
	if _, err := other.Get(front.URL + "/foo"); err == nil {
		t.Error("a server name no Ingress lists completed the handshake")
	}
}

func selfSigned(t *testing.T, host string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}
