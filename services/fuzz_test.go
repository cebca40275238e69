package services

import (
	"errors"
	"os"
	"testing"
)

// Every parser either refuses with ErrInvalid or yields a spec that is
// valid and forms a valid store record.
func checkSpec(t *testing.T, s Spec, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("error %v does not wrap ErrInvalid", err)
		}
		return
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("accepted spec is invalid: %v", err)
	}
	s.ClusterIP = s.ClusterIP.Next() // any address: the record needs one
	if !s.ClusterIP.IsValid() || s.ClusterIP.IsUnspecified() {
		return
	}
	r := s.Record("c1")
	if err := r.Validate(); err != nil {
		t.Fatalf("accepted spec %+v forms an invalid record: %v", s, err)
	}
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"80", "80:8080/TCP", "http=80:8080:30080/udp", "53/UDP", "0", "1:2:3:4", "x=/", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		p, err := ParsePort(v)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if p.Port == 0 || p.TargetPort == 0 || (p.Protocol != "TCP" && p.Protocol != "UDP") {
			t.Fatalf("ParsePort(%q) accepted %+v", v, p)
		}
	})
}

func FuzzParseFlags(f *testing.F) {
	f.Add("web", "NodePort", "80:8080/TCP", "app=web", "", "192.0.2.1", "ClientIP", "service.cilium.io/global=true")
	f.Add("db", "", "5432", "", "10.1.0.5:5432", "", "", "")
	f.Add("x", "LoadBalancer", "a=1:2:30001/udp", "k=v,k2=v2", "", "", "None", "service.cilium.io/shared=false")
	f.Fuzz(func(t *testing.T, name, typ, port, selector, backend, extIP, affinity, annotation string) {
		fl := Flags{Name: name, Type: typ, Ports: []string{port}, SessionAffinity: affinity}
		for _, p := range [][2]any{{&fl.Selector, selector}, {&fl.Backends, backend}, {&fl.ExternalIPs, extIP}, {&fl.Annotations, annotation}} {
			if v := p[1].(string); v != "" {
				*p[0].(*[]string) = []string{v}
			}
		}
		s, err := ParseFlags(fl)
		checkSpec(t, s, err)
	})
}

func FuzzParseManifest(f *testing.F) {
	if b, err := os.ReadFile("testdata/web.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {ports: [{port: 80, targetPort: 8080}]}\n"))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"type":"NodePort","ports":[{"port":1,"nodePort":30000}]}}`))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseManifest(data)
		if err != nil {
			checkSpec(t, Spec{}, err)
			return
		}
		for _, s := range specs {
			checkSpec(t, s, nil)
		}
	})
}
