package records

import (
	"fmt"
	"net/netip"
	"strings"
)

// Service types.
const (
	ServiceClusterIP    = "ClusterIP"
	ServiceNodePort     = "NodePort"
	ServiceLoadBalancer = "LoadBalancer"
)

// Session affinity modes.
const (
	AffinityNone     = "None"
	AffinityClientIP = "ClientIP"
)

// Cross-cluster backend affinity (service.cilium.io/affinity).
const (
	ClusterAffinityNone   = "none"
	ClusterAffinityLocal  = "local"
	ClusterAffinityRemote = "remote"
)

// Limits on a service.
const (
	MaxServicePorts    = 64
	MaxServiceBackends = 1000
)

// Service is the value of state/services/v1/<cluster>/<ns>/<name>, owned by
// its source (CLI or Kubernetes sync). STABLE (v1).
type Service struct {
	Version   int    `json:"v"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	// Frontends are the virtual addresses (cluster IPs, external and
	// load-balancer IPs); each serves every port.
	Frontends []netip.Addr      `json:"frontends"`
	Ports     []ServicePort     `json:"ports"`
	Selector  map[string]string `json:"selector,omitempty"`
	Backends  []Backend         `json:"backends,omitempty"`
	// Global, Shared and Affinity are the service.cilium.io annotations,
	// stored as given. Shared nil means the default (true).
	Global   bool   `json:"global,omitempty"`
	Shared   *bool  `json:"shared,omitempty"`
	Affinity string `json:"affinity,omitempty"`
	// Exported: a Multi-Cluster Services ServiceExport offers this service
	// to the clusterset (it is then global as well). ClusterSetIP is the
	// address of its ServiceImport in this cluster, served like the
	// ClusterIP with the backends of every exporting cluster.
	Exported     bool       `json:"exported,omitempty"`
	ClusterSetIP netip.Addr `json:"clusterSetIP,omitempty"`

	SessionAffinity        string `json:"sessionAffinity,omitempty"`
	SessionAffinityTimeout uint32 `json:"sessionAffinityTimeoutSeconds,omitempty"`
	// Source says who owns the record, e.g. "cli" or "kubernetes".
	Source string `json:"source,omitempty"`
}

// ServicePort is one port of a service.
type ServicePort struct {
	Name       string `json:"name,omitempty"`
	Port       uint16 `json:"port"`
	TargetPort uint16 `json:"targetPort"`
	NodePort   uint16 `json:"nodePort,omitempty"`
	Protocol   string `json:"protocol"`
}

// Backend is one endpoint serving a service port.
type Backend struct {
	IP       netip.Addr `json:"ip"`
	Port     uint16     `json:"port"`
	Protocol string     `json:"protocol"`
	PortName string     `json:"portName,omitempty"`
	Node     string     `json:"node,omitempty"`
	Ready    bool       `json:"ready"`
	// Serving, Terminating and Zone are an EndpointSlice endpoint's
	// conditions and zone, for backends mirrored from Kubernetes.
	Serving     bool   `json:"serving,omitempty"`
	Terminating bool   `json:"terminating,omitempty"`
	Zone        string `json:"zone,omitempty"`
}

// IsShared applies the default of the shared annotation (true).
func (s *Service) IsShared() bool { return s.Shared == nil || *s.Shared }

// Validate checks names, type, frontends, ports, backends and annotations.
func (s *Service) Validate() error {
	id := s.Namespace + "/" + s.Name
	if err := ValidateClusterName(s.Cluster); err != nil {
		return err
	}
	if err := ValidateNamespace(s.Namespace); err != nil {
		return err
	}
	if err := ValidateObjectName(s.Name); err != nil {
		return err
	}
	switch s.Type {
	case ServiceClusterIP, ServiceNodePort, ServiceLoadBalancer:
	default:
		return fmt.Errorf("service %s: %w: type %q, accepted are ClusterIP, NodePort and LoadBalancer", id, ErrInvalid, s.Type)
	}
	if len(s.Frontends) > 16 {
		return fmt.Errorf("service %s: %w: at most 16 frontends", id, ErrInvalid)
	}
	for _, f := range s.Frontends {
		if !f.IsValid() || f.Zone() != "" || f.IsUnspecified() {
			return fmt.Errorf("service %s: %w: frontend %v is not a unicast address", id, ErrInvalid, f)
		}
	}
	if c := s.ClusterSetIP; c.IsValid() && (c.Zone() != "" || c.IsUnspecified() || !s.Global) {
		return fmt.Errorf("service %s: %w: clusterSetIP %v must be a unicast address of a global service", id, ErrInvalid, c)
	}
	if len(s.Ports) == 0 || len(s.Ports) > MaxServicePorts {
		return fmt.Errorf("service %s: %w: give 1 to %d ports", id, ErrInvalid, MaxServicePorts)
	}
	for i, p := range s.Ports {
		if p.Port == 0 || p.TargetPort == 0 {
			return fmt.Errorf("service %s: %w: port %d needs a port and target port", id, ErrInvalid, i)
		}
		if p.Name != "" && !isDNSLabel(p.Name, 63) {
			return fmt.Errorf("service %s: %w: port name %q must be a lowercase DNS label", id, ErrInvalid, p.Name)
		}
		if err := validateProtocol(p.Protocol); err != nil {
			return fmt.Errorf("service %s: %w", id, err)
		}
		if p.NodePort != 0 && s.Type == ServiceClusterIP {
			return fmt.Errorf("service %s: %w: node port %d on a ClusterIP service", id, ErrInvalid, p.NodePort)
		}
		for _, q := range s.Ports[:i] {
			if q.Port == p.Port && q.Protocol == p.Protocol || (p.Name != "" && q.Name == p.Name) {
				return fmt.Errorf("service %s: %w: port %d/%s or name %q given twice", id, ErrInvalid, p.Port, p.Protocol, p.Name)
			}
		}
	}
	if len(s.Selector) > MaxLabels {
		return fmt.Errorf("service %s: %w: at most %d selector labels", id, ErrInvalid, MaxLabels)
	}
	for k, v := range s.Selector {
		if err := (Label{Source: SourceK8s, Key: k, Value: v}).Validate(); err != nil {
			return fmt.Errorf("service %s: selector: %w", id, err)
		}
	}
	if len(s.Backends) > MaxServiceBackends {
		return fmt.Errorf("service %s: %w: at most %d backends", id, ErrInvalid, MaxServiceBackends)
	}
	for _, b := range s.Backends {
		if !b.IP.IsValid() || b.IP.Zone() != "" || b.Port == 0 {
			return fmt.Errorf("service %s: %w: backend %v:%d needs an address and a port", id, ErrInvalid, b.IP, b.Port)
		}
		if err := validateProtocol(b.Protocol); err != nil {
			return fmt.Errorf("service %s: backend %v: %w", id, b.IP, err)
		}
		if b.Node != "" && ValidateNodeName(b.Node) != nil {
			return fmt.Errorf("service %s: %w: backend %v has node %q", id, ErrInvalid, b.IP, b.Node)
		}
		if len(b.Zone) > 253 {
			return fmt.Errorf("service %s: %w: backend %v has a zone longer than 253 bytes", id, ErrInvalid, b.IP)
		}
	}
	switch s.Affinity {
	case "", ClusterAffinityNone, ClusterAffinityLocal, ClusterAffinityRemote:
	default:
		return fmt.Errorf("service %s: %w: affinity %q, accepted are none, local and remote", id, ErrInvalid, s.Affinity)
	}
	switch s.SessionAffinity {
	case "", AffinityNone:
		if s.SessionAffinityTimeout != 0 {
			return fmt.Errorf("service %s: %w: session affinity timeout without ClientIP affinity", id, ErrInvalid)
		}
	case AffinityClientIP:
		if s.SessionAffinityTimeout > 86400 {
			return fmt.Errorf("service %s: %w: session affinity timeout %ds, at most 86400", id, ErrInvalid, s.SessionAffinityTimeout)
		}
	default:
		return fmt.Errorf("service %s: %w: session affinity %q, accepted are None and ClientIP", id, ErrInvalid, s.SessionAffinity)
	}
	return nil
}

// DecodeService decodes the value of key and checks it matches the key.
func (k Keys) DecodeService(key string, value []byte) (Service, error) {
	t, err := k.tail(key, servicesDir)
	if err != nil {
		return Service{}, err
	}
	parts := strings.Split(t, "/")
	if len(parts) != 3 {
		return Service{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<namespace>/<name>", key, ErrInvalid)
	}
	var s Service
	if err := decode(key, value, MaxServiceRecord, &s); err != nil {
		return Service{}, err
	}
	for i, f := range [][2]string{{"cluster", s.Cluster}, {"namespace", s.Namespace}, {"name", s.Name}} {
		if f[1] != parts[i] {
			return Service{}, mismatch(key, f[0], f[1], parts[i])
		}
	}
	return s, nil
}
