package services

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/state/records"
)

// ErrNoService marks a lookup of a service (or a port of one) this node
// does not know.
var ErrNoService = errors.New("no such service")

// BackendsOf returns the ready TCP backends of a service port, by its port
// number or (when portName is set) its name, as this node last computed
// them (the Ingress proxy's resolver, agent/ingress). A service or port
// that does not exist is ErrNoService; a service without ready backends
// is an empty list.
func (s *Sync) BackendsOf(ns, name string, port int32, portName string) ([]netip.AddrPort, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName == nil { // per request of the Ingress and L7 proxies: an index
		s.byName = make(map[string]int, len(s.view))
		for i, v := range s.view {
			if v.source != "hostport" {
				s.byName[v.namespace+"/"+v.name] = i
			}
		}
	}
	i, ok := s.byName[ns+"/"+name]
	if !ok {
		return nil, fmt.Errorf("service %s/%s: %w", ns, name, ErrNoService)
	}
	v := s.view[i]
	found, target := false, ""
	for _, f := range v.frontends {
		if f.Protocol == records.ProtoTCP && ((portName != "" && f.PortName == portName) || (portName == "" && int32(f.Port) == port)) {
			found, target = true, f.PortName
			break
		}
	}
	if !found {
		p := portName
		if p == "" {
			p = fmt.Sprint(port)
		}
		return nil, fmt.Errorf("service %s/%s has no TCP port %s: %w", ns, name, p, ErrNoService)
	}
	var out []netip.AddrPort
	for _, b := range v.backends {
		a := netip.AddrPortFrom(b.IP, b.Port)
		if b.Protocol == records.ProtoTCP && b.PortName == target && b.Ready && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
