package services

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/state/records"
)

type nodePortKey struct {
	port  uint16
	proto string
}

type frontendKey struct {
	addr  netip.AddrPort
	proto string
}

// usage is what the cluster's services hold: cluster IPs, node ports and
// external frontends, each with the key of the service holding it.
type usage struct {
	cidr      netip.Prefix
	ips       map[netip.Addr]string
	nodePorts map[nodePortKey]string
	frontends map[frontendKey]string
	byService map[string]records.Service
	nextIP    netip.Addr
	nextPort  uint16
}

func newUsage(cidr netip.Prefix) *usage {
	return &usage{
		cidr: cidr, ips: map[netip.Addr]string{}, nodePorts: map[nodePortKey]string{},
		frontends: map[frontendKey]string{}, byService: map[string]records.Service{},
		nextIP: cidr.Addr().Next(), nextPort: MinNodePort,
	}
}

func (u *usage) add(key string, r records.Service) {
	u.byService[key] = r
	for i, f := range r.Frontends {
		if i == 0 {
			u.ips[f] = key
		}
		for _, p := range r.Ports {
			u.frontends[frontendKey{netip.AddrPortFrom(f, p.Port), p.Protocol}] = key
		}
	}
	for _, p := range r.Ports {
		if p.NodePort != 0 {
			u.nodePorts[nodePortKey{p.NodePort, p.Protocol}] = key
		}
	}
}

func (u *usage) remove(key string) {
	r, ok := u.byService[key]
	if !ok {
		return
	}
	delete(u.byService, key)
	for i, f := range r.Frontends {
		if i == 0 && u.ips[f] == key {
			delete(u.ips, f)
		}
		for _, p := range r.Ports {
			if k := (frontendKey{netip.AddrPortFrom(f, p.Port), p.Protocol}); u.frontends[k] == key {
				delete(u.frontends, k)
			}
		}
	}
	for _, p := range r.Ports {
		if k := (nodePortKey{p.NodePort, p.Protocol}); u.nodePorts[k] == key {
			delete(u.nodePorts, k)
		}
	}
}

func (u *usage) owner(key string) string {
	if r, ok := u.byService[key]; ok {
		return r.Namespace + "/" + r.Name
	}
	return key
}

// allocate fills s's ClusterIP and NodePorts, keeping those of the old
// record on an update, and refuses clashes.
func (u *usage) allocate(s *Spec, old records.Service, had bool) error {
	if err := u.clusterIP(s, old, had); err != nil {
		return err
	}
	for i := range s.Ports {
		if err := u.nodePort(s, i, old, had); err != nil {
			return err
		}
	}
	for _, ip := range append(append([]netip.Addr{}, s.ExternalIPs...), s.LoadBalancerIPs...) {
		if u.cidr.Contains(ip) {
			return fmt.Errorf("%w: external or load-balancer IP %v is inside the service CIDR %v: an address outside it is accepted", ErrInvalid, ip, u.cidr)
		}
		for _, p := range s.Ports {
			if o, taken := u.frontends[frontendKey{netip.AddrPortFrom(ip, p.Port), p.Protocol}]; taken {
				return fmt.Errorf("%w: frontend %v:%d/%s is already served by service %s", ErrInvalid, ip, p.Port, p.Protocol, u.owner(o))
			}
		}
	}
	return nil
}

func (u *usage) clusterIP(s *Spec, old records.Service, had bool) error {
	var prev netip.Addr
	if had && len(old.Frontends) > 0 {
		prev = old.Frontends[0]
	}
	switch {
	case s.ClusterIP.IsValid() && prev.IsValid() && s.ClusterIP != prev:
		return fmt.Errorf("%w: clusterIP %v: the service has %v and a cluster IP cannot change; delete and re-create the service", ErrInvalid, s.ClusterIP, prev)
	case s.ClusterIP.IsValid():
		last := lastAddr(u.cidr)
		if !u.cidr.Contains(s.ClusterIP) || s.ClusterIP == u.cidr.Addr() || s.ClusterIP == last {
			return fmt.Errorf("%w: clusterIP %v: an address inside the service CIDR %v (not its first or last) is accepted", ErrInvalid, s.ClusterIP, u.cidr)
		}
		if o, taken := u.ips[s.ClusterIP]; taken {
			return fmt.Errorf("%w: clusterIP %v is already taken by service %s", ErrInvalid, s.ClusterIP, u.owner(o))
		}
	case prev.IsValid():
		s.ClusterIP = prev
	default:
		for ip := u.nextIP; u.cidr.Contains(ip.Next()); ip = ip.Next() {
			if _, taken := u.ips[ip]; !taken {
				s.ClusterIP, u.nextIP = ip, ip.Next()
				return nil
			}
		}
		return fmt.Errorf("allocate a cluster IP: every address of the service CIDR %v is taken", u.cidr)
	}
	return nil
}

func (u *usage) nodePort(s *Spec, i int, old records.Service, had bool) error {
	p := &s.Ports[i]
	if s.Type == records.ServiceClusterIP {
		return nil
	}
	if p.NodePort == 0 && had {
		for _, q := range old.Ports {
			if q.Protocol == p.Protocol && (q.Port == p.Port || (p.Name != "" && q.Name == p.Name)) {
				if _, taken := u.nodePorts[nodePortKey{q.NodePort, q.Protocol}]; !taken {
					p.NodePort = q.NodePort
				}
				break
			}
		}
	}
	if p.NodePort != 0 {
		if o, taken := u.nodePorts[nodePortKey{p.NodePort, p.Protocol}]; taken {
			return fmt.Errorf("%w: ports[%d]: nodePort %d/%s is already taken by service %s", ErrInvalid, i, p.NodePort, p.Protocol, u.owner(o))
		}
		u.nodePorts[nodePortKey{p.NodePort, p.Protocol}] = "(this service)"
		return nil
	}
	for n := 0; n <= MaxNodePort-MinNodePort; n++ {
		port := MinNodePort + (int(u.nextPort)-MinNodePort+n)%(MaxNodePort-MinNodePort+1)
		k := nodePortKey{uint16(port), p.Protocol}
		if _, taken := u.nodePorts[k]; !taken {
			p.NodePort, u.nextPort = uint16(port), uint16(port)+1
			if u.nextPort > MaxNodePort {
				u.nextPort = MinNodePort
			}
			u.nodePorts[k] = "(this service)"
			return nil
		}
	}
	return fmt.Errorf("allocate a node port for ports[%d]: every port %d-%d is taken", i, MinNodePort, MaxNodePort)
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
