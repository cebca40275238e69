package services

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/state/records"
)

// ErrInvalid marks a definition refused before anything is written.
var ErrInvalid = errors.New("invalid service definition")

// Annotations honoured by clustermesh, stored as given.
const (
	AnnotationGlobal   = "service.cilium.io/global"
	AnnotationShared   = "service.cilium.io/shared"
	AnnotationAffinity = "service.cilium.io/affinity"
)

// NodePort range, as Kubernetes' default.
const (
	MinNodePort = 30000
	MaxNodePort = 32767
)

// MaxAffinityTimeout is Kubernetes' limit on the ClientIP affinity timeout.
const MaxAffinityTimeout = 86400

// Spec is a service as a user defines it. Zero ClusterIP and NodePorts
// are allocated on apply.
type Spec struct {
	Namespace       string
	Name            string
	Type            string
	ClusterIP       netip.Addr
	Ports           []Port
	ExternalIPs     []netip.Addr
	LoadBalancerIPs []netip.Addr
	Selector        map[string]string
	Backends        []netip.AddrPort
	SessionAffinity string
	AffinityTimeout uint32
	Annotations     map[string]string
}

// Port is one frontend port.
type Port struct {
	Name       string
	Port       uint16
	TargetPort uint16
	NodePort   uint16
	Protocol   string
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks every field, applying defaults first (namespace
// "default", type ClusterIP, protocol TCP, target port = port).
func (s *Spec) Validate() error {
	s.defaults()
	if err := records.ValidateNamespace(s.Namespace); err != nil {
		return invalid("namespace %q: a lowercase DNS label is accepted", s.Namespace)
	}
	if err := records.ValidateObjectName(s.Name); err != nil {
		return invalid("name %q: a lowercase DNS label is accepted", s.Name)
	}
	switch s.Type {
	case records.ServiceClusterIP, records.ServiceNodePort, records.ServiceLoadBalancer:
	default:
		return invalid("type %q: accepted are ClusterIP, NodePort and LoadBalancer", s.Type)
	}
	if s.ClusterIP.IsValid() && (!s.ClusterIP.Is4() || s.ClusterIP.IsUnspecified()) {
		return invalid("clusterIP %v: an IPv4 address in the service CIDR is accepted", s.ClusterIP)
	}
	if err := s.validatePorts(); err != nil {
		return err
	}
	if s.Type != records.ServiceLoadBalancer && len(s.LoadBalancerIPs) > 0 {
		return invalid("lb-ip %v: load-balancer IPs are accepted only with type LoadBalancer", s.LoadBalancerIPs[0])
	}
	ips := append(slices.Clone(s.ExternalIPs), s.LoadBalancerIPs...)
	if len(ips) > 15 {
		return invalid("%d external and load-balancer IPs: at most 15 are accepted", len(ips))
	}
	for _, ip := range ips {
		if !ip.Is4() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
			return invalid("external or load-balancer IP %v: a unicast IPv4 address is accepted", ip)
		}
	}
	if len(s.Selector) > 0 && len(s.Backends) > 0 {
		return invalid("selector and backend both given: accepted is one of them (a selector, or explicit backends)")
	}
	for k, v := range s.Selector {
		if err := (records.Label{Source: records.SourceK8s, Key: k, Value: v}).Validate(); err != nil {
			return invalid("selector %s=%s: %v", k, v, err)
		}
	}
	if len(s.Backends) > records.MaxServiceBackends {
		return invalid("%d backends: at most %d are accepted", len(s.Backends), records.MaxServiceBackends)
	}
	for _, b := range s.Backends {
		if !b.Addr().Is4() || b.Addr().IsUnspecified() || b.Port() == 0 {
			return invalid("backend %v: ip:port with an IPv4 address and a port 1-65535 is accepted", b)
		}
		if len(s.Ports) > 1 && !slices.ContainsFunc(s.Ports, func(p Port) bool { return p.TargetPort == b.Port() }) {
			return invalid("backend %v: with several ports a backend's port must be one of the target ports", b)
		}
	}
	if err := s.validateAffinity(); err != nil {
		return err
	}
	return s.validateAnnotations()
}

func (s *Spec) defaults() {
	if s.Namespace == "" {
		s.Namespace = "default"
	}
	if s.Type == "" {
		s.Type = records.ServiceClusterIP
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = records.ProtoTCP
		}
		p.Protocol = strings.ToUpper(p.Protocol)
		if p.TargetPort == 0 {
			p.TargetPort = p.Port
		}
	}
}

func (s *Spec) validatePorts() error {
	if len(s.Ports) == 0 || len(s.Ports) > records.MaxServicePorts {
		return invalid("%d ports: 1 to %d are accepted (--port 80:8080/TCP)", len(s.Ports), records.MaxServicePorts)
	}
	for i, p := range s.Ports {
		if p.Port == 0 || p.TargetPort == 0 {
			return invalid("ports[%d]: port %d, targetPort %d: 1-65535 is accepted", i, p.Port, p.TargetPort)
		}
		if p.Protocol != records.ProtoTCP && p.Protocol != records.ProtoUDP {
			return invalid("ports[%d]: protocol %q: accepted are TCP and UDP", i, p.Protocol)
		}
		if p.Name != "" && records.ValidateObjectName(p.Name) != nil {
			return invalid("ports[%d]: name %q: a lowercase DNS label is accepted", i, p.Name)
		}
		if p.NodePort != 0 {
			if s.Type == records.ServiceClusterIP {
				return invalid("ports[%d]: nodePort %d: node ports are accepted only with type NodePort or LoadBalancer", i, p.NodePort)
			}
			if p.NodePort < MinNodePort || p.NodePort > MaxNodePort {
				return invalid("ports[%d]: nodePort %d: %d-%d is accepted", i, p.NodePort, MinNodePort, MaxNodePort)
			}
		}
		for j, q := range s.Ports[:i] {
			if q.Port == p.Port && q.Protocol == p.Protocol {
				return invalid("ports[%d]: port %d/%s is also ports[%d]: each port/protocol is accepted once", i, p.Port, p.Protocol, j)
			}
			if p.Name != "" && q.Name == p.Name {
				return invalid("ports[%d]: name %q is also ports[%d]: names must be unique", i, p.Name, j)
			}
			if p.NodePort != 0 && q.NodePort == p.NodePort && q.Protocol == p.Protocol {
				return invalid("ports[%d]: nodePort %d/%s is also ports[%d]", i, p.NodePort, p.Protocol, j)
			}
		}
		if len(s.Ports) > 1 && p.Name == "" {
			return invalid("ports[%d]: a name is required when a service has several ports", i)
		}
	}
	return nil
}

func (s *Spec) validateAffinity() error {
	switch s.SessionAffinity {
	case "", records.AffinityNone:
		if s.AffinityTimeout != 0 {
			return invalid("affinity-timeout %d: accepted only with --session-affinity ClientIP", s.AffinityTimeout)
		}
	case records.AffinityClientIP:
		if s.AffinityTimeout == 0 {
			s.AffinityTimeout = 10800
		}
		if s.AffinityTimeout > MaxAffinityTimeout {
			return invalid("affinity-timeout %d: 1-%d seconds are accepted", s.AffinityTimeout, MaxAffinityTimeout)
		}
	default:
		return invalid("session-affinity %q: accepted are None and ClientIP", s.SessionAffinity)
	}
	return nil
}

func (s *Spec) validateAnnotations() error {
	for k, v := range s.Annotations {
		switch k {
		case AnnotationGlobal, AnnotationShared:
			if v != "true" && v != "false" {
				return invalid("annotation %s=%q: accepted are \"true\" and \"false\"", k, v)
			}
		case AnnotationAffinity:
			switch v {
			case records.ClusterAffinityNone, records.ClusterAffinityLocal, records.ClusterAffinityRemote:
			default:
				return invalid("annotation %s=%q: accepted are none, local and remote", k, v)
			}
		default:
			return invalid("annotation %q: accepted are %s, %s and %s", k, AnnotationGlobal, AnnotationShared, AnnotationAffinity)
		}
	}
	return nil
}
