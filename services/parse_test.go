package services

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/state/records"
)

func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Port
		err  string
	}{
		{in: "80", want: Port{Port: 80, TargetPort: 80, Protocol: "TCP"}},
		{in: "80:8080/TCP", want: Port{Port: 80, TargetPort: 8080, Protocol: "TCP"}},
		{in: "http=80:8080:30080/tcp", want: Port{Name: "http", Port: 80, TargetPort: 8080, NodePort: 30080, Protocol: "TCP"}},
		{in: "53/UDP", want: Port{Port: 53, TargetPort: 53, Protocol: "UDP"}},
		{in: "80/SCTP", err: `protocol "SCTP" is not TCP or UDP`},
		{in: "70000", err: `"70000" is not a port 1-65535`},
		{in: "0:80", err: `"0" is not a port`},
		{in: "1:2:3:4", err: "too many ':'"},
		{in: "", err: "accepted is [name=]port"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePort(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParsePort(%q) = %v, want error containing %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePort(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	base := func(mod func(*Flags)) Flags {
		f := Flags{Name: "web", Ports: []string{"80:8080/TCP"}, Selector: []string{"app=web"}}
		mod(&f)
		return f
	}
	for _, tc := range []struct {
		name  string
		flags Flags
		err   string
		check func(t *testing.T, s Spec)
	}{
		{name: "defaults", flags: base(func(*Flags) {}), check: func(t *testing.T, s Spec) {
			if s.Namespace != "default" || s.Type != "ClusterIP" || s.Selector["app"] != "web" || s.Ports[0].TargetPort != 8080 {
				t.Fatalf("spec %+v", s)
			}
		}},
		{name: "affinity default timeout", flags: base(func(f *Flags) { f.SessionAffinity = "ClientIP" }), check: func(t *testing.T, s Spec) {
			if s.AffinityTimeout != 10800 {
				t.Fatalf("timeout %d, want 10800", s.AffinityTimeout)
			}
		}},
		{name: "backends", flags: base(func(f *Flags) { f.Selector = nil; f.Backends = []string{"10.1.0.5:8080", "10.1.0.6:8080"} }), check: func(t *testing.T, s Spec) {
			r := s.Record("c1")
			if len(r.Backends) != 2 || r.Backends[0].Port != 8080 {
				t.Fatalf("backends %+v", r.Backends)
			}
		}},
		{name: "annotations", flags: base(func(f *Flags) {
			f.Annotations = []string{"service.cilium.io/global=true", "service.cilium.io/shared=false,service.cilium.io/affinity=remote"}
		}), check: func(t *testing.T, s Spec) {
			r := s.Record("c1")
			if !r.Global || r.IsShared() || r.Affinity != "remote" {
				t.Fatalf("record %+v", r)
			}
		}},
		{name: "bad type", flags: base(func(f *Flags) { f.Type = "ExternalName" }), err: `type "ExternalName": accepted are ClusterIP, NodePort and LoadBalancer`},
		{name: "bad protocol", flags: base(func(f *Flags) { f.Ports = []string{"80/ICMP"} }), err: `protocol "ICMP"`},
		{name: "no port", flags: base(func(f *Flags) { f.Ports = nil }), err: "0 ports"},
		{name: "node port on ClusterIP", flags: base(func(f *Flags) { f.Ports = []string{"80:80:30080"} }), err: "accepted only with type NodePort"},
		{name: "node port range", flags: base(func(f *Flags) { f.Type = "NodePort"; f.Ports = []string{"80:80:8080"} }), err: "30000-32767"},
		{name: "lb ip on NodePort", flags: base(func(f *Flags) { f.Type = "NodePort"; f.LoadBalancerIPs = []string{"192.0.2.1"} }), err: "only with type LoadBalancer"},
		{name: "bad external ip", flags: base(func(f *Flags) { f.ExternalIPs = []string{"example.com"} }), err: `--external-ip "example.com"`},
		{name: "bad cluster ip", flags: base(func(f *Flags) { f.ClusterIP = "None" }), err: `--cluster-ip "None"`},
		{name: "selector and backend", flags: base(func(f *Flags) { f.Backends = []string{"10.0.0.1:80"} }), err: "selector and backend both given"},
		{name: "bad backend", flags: base(func(f *Flags) { f.Selector = nil; f.Backends = []string{"10.0.0.1"} }), err: `--backend "10.0.0.1"`},
		{name: "bad selector", flags: base(func(f *Flags) { f.Selector = []string{"app"} }), err: `--selector "app": key=value`},
		{name: "unknown annotation", flags: base(func(f *Flags) { f.Annotations = []string{"foo=bar"} }), err: `annotation "foo"`},
		{name: "bad affinity annotation", flags: base(func(f *Flags) { f.Annotations = []string{"service.cilium.io/affinity=near"} }), err: "accepted are none, local and remote"},
		{name: "bad session affinity", flags: base(func(f *Flags) { f.SessionAffinity = "Cookie" }), err: `session-affinity "Cookie"`},
		{name: "timeout without affinity", flags: base(func(f *Flags) { f.AffinityTimeout = 10 }), err: "only with --session-affinity ClientIP"},
		{name: "timeout too long", flags: base(func(f *Flags) { f.SessionAffinity = "ClientIP"; f.AffinityTimeout = 100000 }), err: "1-86400"},
		{name: "duplicate port", flags: base(func(f *Flags) { f.Ports = []string{"a=80", "b=80"} }), err: "each port/protocol is accepted once"},
		{name: "unnamed ports", flags: base(func(f *Flags) { f.Ports = []string{"80", "443"} }), err: "a name is required"},
		{name: "bad name", flags: base(func(f *Flags) { f.Name = "Web_1" }), err: `name "Web_1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseFlags(tc.flags)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseFlags = %v, want error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}

func TestParseManifest(t *testing.T) {
	data, err := os.ReadFile("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 2 {
		t.Fatalf("%d specs, want 2", len(specs))
	}
	web, api := specs[0], specs[1]
	if web.Namespace != "shop" || web.Type != "NodePort" || web.Selector["app"] != "web" || web.AffinityTimeout != 600 ||
		len(web.Ports) != 2 || web.Ports[0] != (Port{Name: "http", Port: 80, TargetPort: 8080, NodePort: 30080, Protocol: "TCP"}) ||
		web.Ports[1].TargetPort != 53 || web.ExternalIPs[0] != netip.MustParseAddr("192.0.2.10") ||
		web.Annotations[AnnotationGlobal] != "true" || len(web.Annotations) != 2 {
		t.Fatalf("web %+v", web)
	}
	if api.Namespace != "default" || api.Type != "ClusterIP" || api.Ports[0].TargetPort != 443 {
		t.Fatalf("api %+v", api)
	}
}

func TestParseManifestErrors(t *testing.T) {
	svc := func(spec string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n" + spec
	}
	for _, tc := range []struct{ name, doc, err string }{
		{"unknown field", svc("  ports: [{port: 80}]\n  colour: blue\n"), `unknown field "colour"`},
		{"wrong kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n", "accepted is apiVersion v1, kind Service"},
		{"headless", svc("  clusterIP: None\n  ports: [{port: 80}]\n"), "headless services (None) are not supported"},
		{"named target port", svc("  ports: [{port: 80, targetPort: http}]\n"), "named target ports are not supported"},
		{"port range", svc("  ports: [{port: 70000}]\n"), "spec.ports[0].port 70000: 1-65535"},
		{"protocol", svc("  ports: [{port: 80, protocol: SCTP}]\n"), `spec.ports[0].protocol "SCTP": accepted are TCP and UDP`},
		{"external name", svc("  type: ExternalName\n  externalName: example.com\n  ports: [{port: 80}]\n"), "ExternalName"},
		{"ipv6", svc("  ipFamilies: [IPv6]\n  ports: [{port: 80}]\n"), "accepted is IPv4"},
		{"not yaml", "{{{", "fields of a Kubernetes v1 Service"},
		{"empty", "# nothing\n---\n", "holds no document"},
		{"twice", svc("  ports: [{port: 80}]\n") + "---\n" + svc("  ports: [{port: 81}]\n"), "defined twice"},
		{"second bad", svc("  ports: [{port: 80}]\n") + "---\n" + svc("  ports: []\n"), "document 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseManifest = %v, want error containing %q", err, tc.err)
			}
		})
	}
}

func TestSpecRoundTrip(t *testing.T) {
	s, err := ParseFlags(Flags{Namespace: "shop", Name: "web", Type: "LoadBalancer", ClusterIP: "10.96.0.9",
		Ports: []string{"http=80:8080:30080"}, ExternalIPs: []string{"192.0.2.1"}, LoadBalancerIPs: []string{"192.0.2.2"},
		Selector: []string{"app=web"}, SessionAffinity: "ClientIP", Annotations: []string{"service.cilium.io/shared=false"}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Record("c1")
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	if k := FrontendKinds(r); len(k) != 3 || k[0] != KindClusterIP || k[1] != KindLoadBalancer {
		t.Fatalf("kinds %v", k)
	}
	back := SpecOf(r)
	r2 := back.Record("c1")
	if r2.Frontends[0] != r.Frontends[0] || len(r2.Frontends) != 3 || r2.Ports[0] != r.Ports[0] || r2.IsShared() || r2.SessionAffinityTimeout != 10800 {
		t.Fatalf("round trip %+v != %+v", r2, r)
	}
	if r.Type != records.ServiceLoadBalancer {
		t.Fatal(r.Type)
	}
}
