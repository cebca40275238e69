package services

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

// TestL7Redirect: a redirected service port's ClusterIP leads to the
// listener, its NodePort and other ports keep the backends, and Backends
// still gives the service's own (ready, TCP, that port's) backends.
func TestL7Redirect(t *testing.T) {
	cip, node := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("192.168.7.2")
	v := serviceView{namespace: "shop", name: "web",
		frontends: []services.Frontend{
			{Addr: netip.AddrPortFrom(cip, 80), Protocol: records.ProtoTCP, Kind: services.KindClusterIP, PortName: "http", Port: 80},
			{Addr: netip.AddrPortFrom(cip, 9090), Protocol: records.ProtoTCP, Kind: services.KindClusterIP, PortName: "metrics", Port: 9090},
			{Addr: netip.AddrPortFrom(node, 30080), Protocol: records.ProtoTCP, Kind: services.KindNodePort, PortName: "http", Port: 80},
		},
		backends: []clusterBackend{
			{Backend: records.Backend{IP: netip.MustParseAddr("10.100.1.5"), Port: 8080, Protocol: records.ProtoTCP, PortName: "http", Ready: true}},
			{Backend: records.Backend{IP: netip.MustParseAddr("10.100.1.6"), Port: 8080, Protocol: records.ProtoTCP, PortName: "http"}},
			{Backend: records.Backend{IP: netip.MustParseAddr("10.100.1.5"), Port: 9090, Protocol: records.ProtoTCP, PortName: "metrics", Ready: true}},
		},
	}
	listener := netip.MustParseAddrPort("192.168.7.2:40417")
	s := &Sync{view: []serviceView{v}, redirects: map[ServicePort]netip.AddrPort{{Namespace: "shop", Name: "web", Port: 80}: listener}}
	for i, want := range []bool{true, false, false} {
		to, ok := redirected(s.l7Redirects(), v, v.frontends[i])
		if ok != want || ok && to != listener {
			t.Errorf("frontend %v: redirected to %v, %v; want %v", v.frontends[i].Addr, to, ok, want)
		}
	}
	got, ok := s.Backends(ServicePort{Namespace: "shop", Name: "web", Port: 80})
	if want := []netip.AddrPort{netip.MustParseAddrPort("10.100.1.5:8080")}; !ok || !slices.Equal(got, want) {
		t.Errorf("Backends(web:80) = %v, %v; want %v", got, ok, want)
	}
	if _, ok := s.Backends(ServicePort{Namespace: "shop", Name: "web", Port: 81}); ok {
		t.Error("Backends(web:81): found a port the service does not have")
	}
}
