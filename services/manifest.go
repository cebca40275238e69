package services

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// MaxManifest is the largest manifest file accepted.
const MaxManifest = 1 << 20

// manifest is a Kubernetes v1 Service as kubectl accepts it. Fields weft
// does not implement are listed so that they are recognised, and refused
// with a reason when set to anything but their default.
type manifest struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   metadata `json:"metadata"`
	Spec       k8sSpec  `json:"spec"`
	Status     any      `json:"status,omitempty"`
}

type metadata struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	UID               string            `json:"uid,omitempty"`
	ResourceVersion   string            `json:"resourceVersion,omitempty"`
	Generation        int64             `json:"generation,omitempty"`
	CreationTimestamp any               `json:"creationTimestamp,omitempty"`
	ManagedFields     any               `json:"managedFields,omitempty"`
	OwnerReferences   any               `json:"ownerReferences,omitempty"`
	Finalizers        []string          `json:"finalizers,omitempty"`
}

type k8sSpec struct {
	Type                          string            `json:"type,omitempty"`
	ClusterIP                     string            `json:"clusterIP,omitempty"`
	ClusterIPs                    []string          `json:"clusterIPs,omitempty"`
	Ports                         []k8sPort         `json:"ports"`
	Selector                      map[string]string `json:"selector,omitempty"`
	ExternalIPs                   []string          `json:"externalIPs,omitempty"`
	LoadBalancerIP                string            `json:"loadBalancerIP,omitempty"`
	LoadBalancerSourceRanges      []string          `json:"loadBalancerSourceRanges,omitempty"`
	LoadBalancerClass             *string           `json:"loadBalancerClass,omitempty"`
	AllocateLoadBalancerNodePorts *bool             `json:"allocateLoadBalancerNodePorts,omitempty"`
	SessionAffinity               string            `json:"sessionAffinity,omitempty"`
	SessionAffinityConfig         *struct {
		ClientIP *struct {
			TimeoutSeconds *uint32 `json:"timeoutSeconds,omitempty"`
		} `json:"clientIP,omitempty"`
	} `json:"sessionAffinityConfig,omitempty"`
	ExternalTrafficPolicy    string   `json:"externalTrafficPolicy,omitempty"`
	InternalTrafficPolicy    string   `json:"internalTrafficPolicy,omitempty"`
	IPFamilies               []string `json:"ipFamilies,omitempty"`
	IPFamilyPolicy           string   `json:"ipFamilyPolicy,omitempty"`
	PublishNotReadyAddresses bool     `json:"publishNotReadyAddresses,omitempty"`
	HealthCheckNodePort      int32    `json:"healthCheckNodePort,omitempty"`
	ExternalName             string   `json:"externalName,omitempty"`
	TrafficDistribution      *string  `json:"trafficDistribution,omitempty"`
}

type k8sPort struct {
	Name        string          `json:"name,omitempty"`
	Protocol    string          `json:"protocol,omitempty"`
	AppProtocol string          `json:"appProtocol,omitempty"`
	Port        int64           `json:"port"`
	TargetPort  json.RawMessage `json:"targetPort,omitempty"`
	NodePort    int64           `json:"nodePort,omitempty"`
}

// ParseManifest parses one or more YAML (or JSON) documents, separated by
// "---", each a Kubernetes v1 Service. Every document is checked before any
// is returned: one bad document refuses the whole file.
func ParseManifest(data []byte) ([]Spec, error) {
	if len(data) > MaxManifest {
		return nil, invalid("manifest of %d bytes: at most %d are accepted", len(data), MaxManifest)
	}
	var out []Spec
	for i, doc := range splitDocuments(data) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		s, err := parseDocument(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		for _, o := range out {
			if o.Namespace == s.Namespace && o.Name == s.Name {
				return nil, fmt.Errorf("document %d: %w", i+1, invalid("service %s/%s is defined twice", s.Namespace, s.Name))
			}
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, invalid("the manifest holds no document: a Kubernetes Service (apiVersion: v1, kind: Service) is accepted")
	}
	return out, nil
}

func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if t := bytes.TrimRight(line, " \t\r\n"); bytes.Equal(t, []byte("---")) || bytes.HasPrefix(t, []byte("--- ")) {
			docs = append(docs, cur)
			cur = nil
			continue
		}
		cur = append(cur, line...)
	}
	return append(docs, cur)
}

func stripComments(doc []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

func parseDocument(doc []byte) (Spec, error) {
	var m manifest
	if err := yaml.UnmarshalStrict(doc, &m); err != nil {
		return Spec{}, invalid("%v (the fields of a Kubernetes v1 Service are accepted)", err)
	}
	if m.APIVersion != "v1" || m.Kind != "Service" {
		return Spec{}, invalid("apiVersion %q, kind %q: accepted is apiVersion v1, kind Service", m.APIVersion, m.Kind)
	}
	s := Spec{Namespace: m.Metadata.Namespace, Name: m.Metadata.Name, Type: m.Spec.Type, Selector: m.Spec.Selector, SessionAffinity: m.Spec.SessionAffinity}
	if err := m.Spec.unsupported(); err != nil {
		return Spec{}, err
	}
	if ip := m.Spec.ClusterIP; ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return Spec{}, invalid("spec.clusterIP %q: an IPv4 address or nothing (allocated) is accepted; headless services (None) are not supported", ip)
		}
		s.ClusterIP = a
	}
	for _, ip := range m.Spec.ClusterIPs {
		if ip != m.Spec.ClusterIP {
			return Spec{}, invalid("spec.clusterIPs %v: only one cluster IP, equal to spec.clusterIP, is accepted", m.Spec.ClusterIPs)
		}
	}
	var err error
	if s.ExternalIPs, err = parseAddrs("spec.externalIPs", m.Spec.ExternalIPs); err != nil {
		return Spec{}, err
	}
	if m.Spec.LoadBalancerIP != "" {
		if s.LoadBalancerIPs, err = parseAddrs("spec.loadBalancerIP", []string{m.Spec.LoadBalancerIP}); err != nil {
			return Spec{}, err
		}
	}
	if c := m.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		s.AffinityTimeout = *c.ClientIP.TimeoutSeconds
	}
	for i, p := range m.Spec.Ports {
		port, err := p.toPort(i)
		if err != nil {
			return Spec{}, err
		}
		s.Ports = append(s.Ports, port)
	}
	for k, v := range m.Metadata.Annotations {
		if strings.HasPrefix(k, "service.cilium.io/") {
			if s.Annotations == nil {
				s.Annotations = map[string]string{}
			}
			s.Annotations[k] = v
		}
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// unsupported refuses fields weft recognises but does not implement.
func (k *k8sSpec) unsupported() error {
	switch {
	case k.Type == "ExternalName" || k.ExternalName != "":
		return invalid("spec.type ExternalName: accepted are ClusterIP, NodePort and LoadBalancer")
	case len(k.LoadBalancerSourceRanges) > 0:
		return invalid("spec.loadBalancerSourceRanges: not supported, leave it empty")
	case k.PublishNotReadyAddresses:
		return invalid("spec.publishNotReadyAddresses: not supported, accepted is false")
	case k.IPFamilyPolicy != "" && k.IPFamilyPolicy != "SingleStack":
		return invalid("spec.ipFamilyPolicy %q: accepted is SingleStack (IPv4)", k.IPFamilyPolicy)
	case k.ExternalTrafficPolicy != "" && k.ExternalTrafficPolicy != "Cluster" && k.ExternalTrafficPolicy != "Local":
		return invalid("spec.externalTrafficPolicy %q: accepted are Cluster and Local", k.ExternalTrafficPolicy)
	case k.InternalTrafficPolicy != "" && k.InternalTrafficPolicy != "Cluster":
		return invalid("spec.internalTrafficPolicy %q: accepted is Cluster", k.InternalTrafficPolicy)
	}
	for _, f := range k.IPFamilies {
		if f != "IPv4" {
			return invalid("spec.ipFamilies %v: accepted is IPv4", k.IPFamilies)
		}
	}
	return nil
}

func (p k8sPort) toPort(i int) (Port, error) {
	field := fmt.Sprintf("spec.ports[%d]", i)
	if p.Port < 1 || p.Port > 65535 {
		return Port{}, invalid("%s.port %d: 1-65535 is accepted", field, p.Port)
	}
	if p.NodePort < 0 || p.NodePort > 65535 {
		return Port{}, invalid("%s.nodePort %d: %d-%d is accepted", field, p.NodePort, MinNodePort, MaxNodePort)
	}
	out := Port{Name: p.Name, Port: uint16(p.Port), NodePort: uint16(p.NodePort), Protocol: p.Protocol}
	if out.Protocol == "" {
		out.Protocol = "TCP"
	}
	if out.Protocol != "TCP" && out.Protocol != "UDP" {
		return Port{}, invalid("%s.protocol %q: accepted are TCP and UDP", field, p.Protocol)
	}
	if t := bytes.TrimSpace(p.TargetPort); len(t) > 0 && string(t) != "null" {
		n, err := strconv.ParseUint(string(t), 10, 16)
		if err != nil || n == 0 {
			return Port{}, invalid("%s.targetPort %s: a port number 1-65535 is accepted (named target ports are not supported)", field, t)
		}
		out.TargetPort = uint16(n)
	}
	return out, nil
}
