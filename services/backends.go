package services

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/state/records"
)

// Pod is what backend selection needs to know of an endpoint anywhere in
// the cluster: its address, namespace, identity labels and node.
type Pod struct {
	IP        netip.Addr
	Namespace string
	Labels    records.Labels
	HostIP    netip.Addr
	Node      string
	Cluster   string
}

// Selects reports whether a service's selector picks pod, as the
// EndpointSlice controller does: same namespace, every selector label
// present with its value. An empty selector picks nothing.
func Selects(r records.Service, pod Pod) bool {
	if len(r.Selector) == 0 || pod.Namespace != r.Namespace {
		return false
	}
	for k, v := range r.Selector {
		got, ok := pod.Labels.Get(records.SourceK8s, k)
		if !ok || got != v {
			return false
		}
	}
	return true
}

// Backends are a service's backends: the selected pods on each service
// port's target port, or the record's explicit backends when it has no
// selector. The result is sorted by address.
func Backends(r records.Service, pods []Pod) []records.Backend {
	if len(r.Selector) == 0 {
		return slices.Clone(r.Backends)
	}
	var out []records.Backend
	for _, pod := range pods {
		if !Selects(r, pod) {
			continue
		}
		for _, p := range r.Ports {
			out = append(out, records.Backend{IP: pod.IP, Port: p.TargetPort, Protocol: p.Protocol, PortName: p.Name, Node: pod.Node, Ready: true})
		}
	}
	slices.SortFunc(out, func(a, b records.Backend) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	return out
}

// Frontend is one address:port/protocol a node serves for a service.
type Frontend struct {
	Addr     netip.AddrPort
	Protocol string
	Kind     string // KindClusterIP, KindNodePort, ...
	PortName string
	Port     uint16 // the service port this frontend serves
}

// Frontends expands r into the frontends a node with nodeIPs serves:
// every frontend address on every port, and each node port on every node
// address.
func Frontends(r records.Service, nodeIPs []netip.Addr) []Frontend {
	kinds := FrontendKinds(r)
	var out []Frontend
	for _, p := range r.Ports {
		for i, f := range r.Frontends {
			out = append(out, Frontend{Addr: netip.AddrPortFrom(f, p.Port), Protocol: p.Protocol, Kind: kinds[i], PortName: p.Name, Port: p.Port})
		}
		if r.ClusterSetIP.IsValid() {
			out = append(out, Frontend{Addr: netip.AddrPortFrom(r.ClusterSetIP, p.Port), Protocol: p.Protocol, Kind: KindClusterSetIP, PortName: p.Name, Port: p.Port})
		}
		if p.NodePort != 0 && r.Type != records.ServiceClusterIP {
			for _, ip := range nodeIPs {
				out = append(out, Frontend{Addr: netip.AddrPortFrom(ip, p.NodePort), Protocol: p.Protocol, Kind: KindNodePort, PortName: p.Name, Port: p.Port})
			}
		}
	}
	return out
}

// PortBackends picks the backends serving one service port.
func PortBackends(bes []records.Backend, p records.ServicePort) []records.Backend {
	var out []records.Backend
	for _, b := range bes {
		if b.Protocol == p.Protocol && (b.PortName == p.Name || (b.PortName == "" && p.Name == "")) && b.Ready {
			out = append(out, b)
		}
	}
	return out
}
