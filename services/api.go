package services

import (
	"maps"
	"net/netip"

	"github.com/weftnet/weft/api/agentapi"
)

// FromAPI turns a gRPC ServiceSpec into a validated Spec.
func FromAPI(p *agentapi.ServiceSpec) (Spec, error) {
	f := Flags{
		Namespace: p.GetNamespace(), Name: p.GetName(), Type: p.GetType(), ClusterIP: p.GetClusterIp(),
		ExternalIPs: p.GetExternalIps(), LoadBalancerIPs: p.GetLoadBalancerIps(), Backends: p.GetBackends(),
		SessionAffinity: p.GetSessionAffinity(), AffinityTimeout: p.GetAffinityTimeoutSeconds(),
	}
	var err error
	spec := Spec{Namespace: f.Namespace, Name: f.Name, Type: f.Type, Selector: maps.Clone(p.GetSelector()),
		SessionAffinity: f.SessionAffinity, AffinityTimeout: f.AffinityTimeout, Annotations: maps.Clone(p.GetAnnotations())}
	if f.ClusterIP != "" {
		ip, err := netip.ParseAddr(f.ClusterIP)
		if err != nil {
			return Spec{}, invalid("cluster_ip %q: an IPv4 address such as 10.96.0.10 is accepted", f.ClusterIP)
		}
		spec.ClusterIP = ip
	}
	for i, pp := range p.GetPorts() {
		for _, v := range []uint32{pp.GetPort(), pp.GetTargetPort(), pp.GetNodePort()} {
			if v > 65535 {
				return Spec{}, invalid("ports[%d]: %d: 1-65535 is accepted", i, v)
			}
		}
		spec.Ports = append(spec.Ports, Port{Name: pp.GetName(), Port: uint16(pp.GetPort()), TargetPort: uint16(pp.GetTargetPort()),
			NodePort: uint16(pp.GetNodePort()), Protocol: pp.GetProtocol()})
	}
	if spec.ExternalIPs, err = parseAddrs("external_ips", f.ExternalIPs); err != nil {
		return Spec{}, err
	}
	if spec.LoadBalancerIPs, err = parseAddrs("load_balancer_ips", f.LoadBalancerIPs); err != nil {
		return Spec{}, err
	}
	for _, b := range f.Backends {
		ap, err := netip.ParseAddrPort(b)
		if err != nil {
			return Spec{}, invalid("backends %q: ip:port such as 10.100.1.5:8080 is accepted", b)
		}
		spec.Backends = append(spec.Backends, ap)
	}
	if err := spec.Validate(); err != nil {
		return Spec{}, err
	}
	return spec, nil
}

// ToAPI is the reverse of FromAPI.
func ToAPI(s Spec, cluster string) *agentapi.ServiceSpec {
	p := &agentapi.ServiceSpec{
		Namespace: s.Namespace, Name: s.Name, Type: s.Type, Selector: maps.Clone(s.Selector),
		SessionAffinity: s.SessionAffinity, AffinityTimeoutSeconds: s.AffinityTimeout,
		Annotations: maps.Clone(s.Annotations), Cluster: cluster,
	}
	if s.ClusterIP.IsValid() {
		p.ClusterIp = s.ClusterIP.String()
	}
	for _, port := range s.Ports {
		p.Ports = append(p.Ports, &agentapi.ServicePortSpec{Name: port.Name, Port: uint32(port.Port),
			TargetPort: uint32(port.TargetPort), NodePort: uint32(port.NodePort), Protocol: port.Protocol})
	}
	for _, ip := range s.ExternalIPs {
		p.ExternalIps = append(p.ExternalIps, ip.String())
	}
	for _, ip := range s.LoadBalancerIPs {
		p.LoadBalancerIps = append(p.LoadBalancerIps, ip.String())
	}
	for _, b := range s.Backends {
		p.Backends = append(p.Backends, b.String())
	}
	return p
}
