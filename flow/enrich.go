package flow

import (
	"net/netip"
	"strings"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// Endpoint is what the agent knows about an address.
type Endpoint struct {
	Identity       uint32
	Namespace, Pod string // empty when the address is not a pod's
	Node           string // node the address lives on, when known
}

// EndpointLookup finds what lives at an address (the agent's ipcache and
// local endpoints). ok is false for an unknown address.
type EndpointLookup interface {
	LookupIP(ip netip.Addr) (ep Endpoint, ok bool)
}

// IdentityLookup returns the labels of an identity ("source:key=value",
// sorted); ok is false for an unknown identity.
type IdentityLookup interface {
	IdentityLabels(id uint32) (labels []string, ok bool)
}

// Service names a service and one of its frontends.
type Service struct {
	Namespace, Name string
	Frontend        netip.AddrPort // zero when unknown
}

// ServiceLookup finds the service of a frontend (proto is the IP protocol
// number); ok is false when no programmed service has it.
type ServiceLookup interface {
	ServiceOfFrontend(frontend netip.AddrPort, proto uint8) (svc Service, ok bool)
}

// PolicyLookup names the policies that decide a new flow of a local
// endpoint (identity subject) with peer on port/proto in direction dir:
// "ns/name" (comma-separated when several), "default deny" when the
// direction is enforced and no rule admits it, "" when no policy decides.
type PolicyLookup interface {
	PolicyOf(dir datapath.Direction, subject, peer uint32, port uint16, proto uint8) string
}

// ClusterLabel is the label that names an identity's cluster.
const ClusterLabel = "k8s:io.cilium.k8s.policy.cluster"

// Enricher turns datapath events into records. Every lookup may be nil:
// the record then only carries what the event holds.
type Enricher struct {
	Node, Cluster string // of the observing node
	Clock         *Clock
	Endpoints     EndpointLookup
	Identities    IdentityLookup
	Services      ServiceLookup
	Policies      PolicyLookup
	// GlobalCIDR and PodCIDR are the observing cluster's global addressing
	// as the datapath translates it (zero: off): a pod of this cluster
	// talking to another cluster's end gets its global address in
	// FlowEndpoint.global_ip.
	GlobalCIDR, PodCIDR netip.Prefix
}

// Enrich returns the record of one datapath event.
func (e *Enricher) Enrich(f datapath.Flow) *agentapi.Flow {
	point := f.Point.String()
	r := &agentapi.Flow{
		Node:             e.Node,
		Cluster:          e.Cluster,
		Source:           e.endpoint(f.Source, f.SourceIdentity),
		Destination:      e.endpoint(f.Destination, f.DestinationIdentity),
		ObservationPoint: point,
		Verdict:          agentapi.Verdict_FORWARDED,
		Protocol:         ProtocolName(f.Proto),
		ProtocolNumber:   uint32(f.Proto),
		Direction:        DirectionOf(point),
		TcpFlags:         uint32(f.TCPFlags),
	}
	if e.Clock != nil {
		r.TimeNs = e.Clock.Wall(f.Time).UnixNano()
	}
	e.setGlobal(r.Source, r.Destination)
	e.setGlobal(r.Destination, r.Source)
	if point == "to-proxy" {
		// Handed to the node's L7 proxy, which records the requests.
		r.Verdict = agentapi.Verdict_REDIRECTED
	}
	if f.Dropped {
		r.Verdict = agentapi.Verdict_DROPPED
		r.DropReasonCode = uint32(f.Reason)
		r.DropReason = f.Reason.String()
	}
	// Where a policy decides (an endpoint's ingress at to-endpoint, its
	// egress at from-endpoint), the policy that did.
	if e.Policies != nil {
		switch point {
		case "to-endpoint":
			r.Policy = e.Policies.PolicyOf(datapath.Ingress, f.DestinationIdentity, f.SourceIdentity, f.Destination.Port(), f.Proto)
		case "from-endpoint":
			r.Policy = e.Policies.PolicyOf(datapath.Egress, f.SourceIdentity, f.DestinationIdentity, f.Destination.Port(), f.Proto)
		}
	}
	// Only a flow the datapath load-balanced names a service: the
	// frontend the client asked for, the destination being the backend
	// chosen for it.
	if f.Frontend.IsValid() {
		r.DestinationService = &agentapi.FlowService{Frontend: f.Frontend.String()}
		if e.Services != nil {
			if svc, ok := e.Services.ServiceOfFrontend(f.Frontend, f.Proto); ok {
				r.DestinationService.Namespace, r.DestinationService.Name = svc.Namespace, svc.Name
			}
		}
	}
	return r
}

// setGlobal sets ep's global address when ep is a pod of this cluster
// and peer is of another cluster: the datapath gives the pod's packets to
// other clusters its global address as source, and the peer addressed it
// by it.
func (e *Enricher) setGlobal(ep, peer *agentapi.FlowEndpoint) {
	if !e.GlobalCIDR.IsValid() || ep.GetCluster() != e.Cluster || peer.GetCluster() == "" || peer.GetCluster() == e.Cluster {
		return
	}
	ip, err := netip.ParseAddr(ep.GetIp())
	if err != nil || !e.PodCIDR.Contains(ip) {
		return
	}
	if g, ok := records.GlobalAddr(e.GlobalCIDR, []netip.Prefix{e.PodCIDR}, ip); ok {
		ep.GlobalIp = g.String()
	}
}

// SetEnds fills the node and the ends of a record the L7 proxies write
// (e nil: addresses only, no node).
func (e *Enricher) SetEnds(f *agentapi.Flow, src, dst netip.AddrPort) {
	if e == nil {
		f.Source = &agentapi.FlowEndpoint{Ip: src.Addr().String(), Port: uint32(src.Port())}
		f.Destination = &agentapi.FlowEndpoint{Ip: dst.Addr().String(), Port: uint32(dst.Port())}
		return
	}
	f.Node, f.Cluster = e.Node, e.Cluster
	f.Source, f.Destination = e.endpoint(src, 0), e.endpoint(dst, 0)
}

func (e *Enricher) endpoint(ap netip.AddrPort, id uint32) *agentapi.FlowEndpoint {
	ep := &agentapi.FlowEndpoint{Port: uint32(ap.Port()), Identity: id}
	if !ap.Addr().IsValid() {
		return ep
	}
	ep.Ip = ap.Addr().String()
	if e.Endpoints != nil {
		if known, ok := e.Endpoints.LookupIP(ap.Addr()); ok {
			ep.Namespace, ep.PodName, ep.Node = known.Namespace, known.Pod, known.Node
			if ep.Identity == 0 {
				ep.Identity = known.Identity
			}
		}
	}
	if e.Identities != nil && ep.Identity != 0 {
		if labels, ok := e.Identities.IdentityLabels(ep.Identity); ok {
			ep.Labels = labels
			for _, l := range labels {
				if v, ok := strings.CutPrefix(l, ClusterLabel+"="); ok {
					ep.Cluster = v
				}
			}
		}
	}
	return ep
}
