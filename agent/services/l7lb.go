package services

import (
	"maps"
	"net/netip"

	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

// ServicePort names one TCP port of a service.
type ServicePort struct {
	Namespace, Name string
	Port            uint16
}

// SetL7Redirect makes the ClusterIP (and ClusterSetIP) frontends of sp
// lead to to, a listener of this node's L7 load balancer (agent/l7lb),
// instead of the service's backends: the socket load balancer then
// translates a connect to ClusterIP:port into one to the listener.
// NodePort, external and load-balancer frontends keep the backends. An
// invalid to removes the redirect.
func (s *Sync) SetL7Redirect(sp ServicePort, to netip.AddrPort) {
	s.mu.Lock()
	if to.IsValid() {
		s.redirects[sp] = to
	} else {
		delete(s.redirects, sp)
	}
	s.mu.Unlock()
	s.Changed()
}

// Backends returns the ready backends of a service's TCP port as this
// node last computed them (the service's own, not an L7 redirect; a
// global service's include the remote clusters' it merges). ok is false
// when the service or port does not exist.
func (s *Sync) Backends(sp ServicePort) (addrs []netip.AddrPort, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.view {
		if v.namespace != sp.Namespace || v.name != sp.Name || v.source == "hostport" {
			continue
		}
		for _, f := range v.frontends {
			if f.Kind != services.KindClusterIP || f.Protocol != records.ProtoTCP || f.Addr.Port() != sp.Port {
				continue
			}
			for _, b := range v.backends {
				if b.Ready && b.Protocol == records.ProtoTCP && b.PortName == f.PortName {
					addrs = append(addrs, netip.AddrPortFrom(b.IP, b.Port))
				}
			}
			return addrs, true
		}
	}
	return nil, false
}

// redirected applies the L7 redirects to a frontend being programmed.
func redirected(redirects map[ServicePort]netip.AddrPort, v serviceView, f services.Frontend) (netip.AddrPort, bool) {
	if f.Protocol != records.ProtoTCP || (f.Kind != services.KindClusterIP && f.Kind != services.KindClusterSetIP) || v.source == "hostport" {
		return netip.AddrPort{}, false
	}
	to, ok := redirects[ServicePort{Namespace: v.namespace, Name: v.name, Port: f.Addr.Port()}]
	return to, ok
}

func (s *Sync) l7Redirects() map[ServicePort]netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.redirects)
}
