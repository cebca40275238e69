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

// SetL7Ready makes the first programming of the LB maps wait until ready
// is closed: the L7 load balancer has set the redirects of the documents
// the store holds (agent/l7lb.Component.Ready), so that a restarted agent
// never programs a balanced Service port with the Service's own backends
// first. Call it before Run.
func (s *Sync) SetL7Ready(ready <-chan struct{}) {
	s.mu.Lock()
	s.l7ready = ready
	s.mu.Unlock()
}

func (s *Sync) l7Ready() []<-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l7ready == nil {
		return nil
	}
	return []<-chan struct{}{s.l7ready}
}

// Backends returns the ready backends of a service's TCP port as this
// node last computed them (the service's own, not an L7 redirect; a
// global service's include the remote clusters' it merges). ok is false
// when the service or port does not exist. It is BackendsOf by number.
func (s *Sync) Backends(sp ServicePort) (addrs []netip.AddrPort, ok bool) {
	addrs, err := s.BackendsOf(sp.Namespace, sp.Name, int32(sp.Port), "")
	return addrs, err == nil
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
