package services

import (
	"net/netip"
	"testing"

	"github.com/weftnet/weft/state/records"
)

func TestBackendsAndFrontends(t *testing.T) {
	s, err := ParseFlags(Flags{Namespace: "shop", Name: "web", Type: "NodePort", ClusterIP: "10.96.0.10",
		Ports: []string{"http=80:8080:30080", "dns=53/UDP"}, ExternalIPs: []string{"192.0.2.1"}, Selector: []string{"app=web"}})
	if err != nil {
		t.Fatal(err)
	}
	s.Ports[1].NodePort = 30053
	r := s.Record("c1")
	pod := func(ip, ns string, labels ...string) Pod {
		ls := append([]string{"k8s:" + records.LabelNamespace + "=" + ns}, labels...)
		return Pod{IP: netip.MustParseAddr(ip), Namespace: ns, Labels: records.MustParseLabels(ls...), Node: "n1"}
	}
	pods := []Pod{
		pod("10.100.2.5", "shop", "k8s:app=web", "k8s:tier=front"),
		pod("10.100.1.5", "shop", "k8s:app=web"),
		pod("10.100.1.6", "shop", "k8s:app=db"),
		pod("10.100.1.7", "other", "k8s:app=web"),
		pod("10.100.1.8", "shop", "reserved:app=web"),
	}
	bes := Backends(r, pods)
	if len(bes) != 4 || bes[0].IP.String() != "10.100.1.5" || bes[2].IP.String() != "10.100.2.5" {
		t.Fatalf("backends %+v", bes)
	}
	http := PortBackends(bes, r.Ports[0])
	if len(http) != 2 || http[0].Port != 8080 || http[0].Protocol != "TCP" {
		t.Fatalf("http backends %+v", http)
	}
	fes := Frontends(r, []netip.Addr{netip.MustParseAddr("192.168.1.1")})
	want := map[string]string{
		"10.96.0.10:80/TCP": KindClusterIP, "192.0.2.1:80/TCP": KindExternalIP, "192.168.1.1:30080/TCP": KindNodePort,
		"10.96.0.10:53/UDP": KindClusterIP, "192.0.2.1:53/UDP": KindExternalIP, "192.168.1.1:30053/UDP": KindNodePort,
	}
	if len(fes) != len(want) {
		t.Fatalf("frontends %+v", fes)
	}
	for _, f := range fes {
		if want[f.Addr.String()+"/"+f.Protocol] != f.Kind {
			t.Errorf("frontend %v/%s kind %s", f.Addr, f.Protocol, f.Kind)
		}
	}
	r.Selector = nil
	r.Backends = []records.Backend{{IP: netip.MustParseAddr("10.0.0.1"), Port: 9, Protocol: "TCP", Ready: true}}
	if got := Backends(r, pods); len(got) != 1 || got[0].Port != 9 {
		t.Fatalf("explicit backends %+v", got)
	}
}
