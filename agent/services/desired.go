package services

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/services"
	"github.com/weftnet/weft/state/records"
)

// serviceView is one service as `weft service list` shows it.
type serviceView struct {
	number          uint32
	namespace, name string
	frontends       []services.Frontend
	backends        []clusterBackend
	annotations     map[string]string
	sessionAffinity string
	source          string // who wrote the record: cli, kubernetes, … (hostport for HostPorts)
}

// clusterBackend is a backend tagged with the cluster it lives in, so that
// clustermesh can merge global services.
type clusterBackend struct {
	records.Backend
	Cluster string
	// PodIP is a remote pod's own address when IP is its global address.
	PodIP netip.Addr
}

var protoNumbers = map[string]uint8{records.ProtoTCP: 6, records.ProtoUDP: 17}

var frontendTypes = map[string]datapath.ServiceType{
	services.KindClusterIP: datapath.ClusterIP, services.KindClusterSetIP: datapath.ClusterIP, services.KindNodePort: datapath.NodePort,
	services.KindExternalIP: datapath.ExternalIP, services.KindLoadBalancer: datapath.LoadBalancer,
	services.KindHostPort: datapath.NodePort,
}

// desired computes every frontend this node serves, the list view, and
// which frontends are global services'.
func (s *Sync) desired() (map[datapath.ServiceKey]datapath.Service, []serviceView, map[datapath.ServiceKey]bool) {
	byNamespace := map[string][]services.Pod{} // selectors match in their own namespace only
	for _, p := range s.pods() {
		byNamespace[p.Namespace] = append(byNamespace[p.Namespace], p)
	}
	recs := s.svcs.Snapshot()
	s.mu.Lock()
	remote, pull := maps.Clone(s.remote), s.pullRemote
	s.mu.Unlock()
	// Remote clusters matter to global services only: skip building their
	// pod lists (100k entries while a remote bootstraps) when there is none.
	if pull != nil && slices.ContainsFunc(slices.Collect(maps.Values(recs)), func(r records.Service) bool { return r.Global }) {
		for name, rs := range pull() {
			remote[name] = rs
		}
	}

	out := map[datapath.ServiceKey]datapath.Service{}
	global := map[datapath.ServiceKey]bool{}
	var views []serviceView
	redirects := s.l7Redirects()
	add := func(v serviceView, affinity time.Duration, isGlobal bool) {
		for _, f := range v.frontends {
			svc := datapath.Service{Frontend: f.Addr, Proto: protoNumbers[f.Protocol], Type: frontendTypes[f.Kind], SessionAffinity: affinity}
			for _, b := range v.backends {
				if b.Protocol == f.Protocol && b.PortName == f.PortName && b.Ready {
					svc.Backends = append(svc.Backends, datapath.Backend{Addr: netip.AddrPortFrom(b.IP, b.Port)})
				}
			}
			if to, ok := redirected(redirects, v, f); ok { // served by this node's L7 load balancer
				svc.Backends, svc.SessionAffinity = []datapath.Backend{{Addr: to}}, 0
			}
			key := datapath.ServiceKey{Frontend: f.Addr, Proto: svc.Proto}
			if _, taken := out[key]; taken {
				// A HostPort on a node port in use: the service keeps it.
				s.log.Warn("frontend defined twice; keeping the first", "frontend", f.Addr, "protocol", f.Protocol, "kind", f.Kind, "of", v.namespace+"/"+v.name)
				continue
			}
			out[key] = svc
			global[key] = isGlobal
		}
		views = append(views, v)
	}
	for _, key := range slices.Sorted(maps.Keys(recs)) {
		r := recs[key]
		bes := mergeRemote(r, tag(services.Backends(r, byNamespace[r.Namespace]), s.cfg.Cluster), remote)
		v := serviceView{number: s.number(key), namespace: r.Namespace, name: r.Name, backends: bes,
			frontends: services.Frontends(r, []netip.Addr{s.cfg.NodeIP}), annotations: annotations(r), sessionAffinity: r.SessionAffinity, source: r.Source}
		add(v, time.Duration(r.SessionAffinityTimeout)*time.Second, r.Global)
	}
	for _, v := range s.hostPorts() {
		add(v, 0, false)
	}
	s.forgetNumbers(views)
	return out, views, global
}

// forgetNumbers drops the numbers of services that are gone.
func (s *Sync) forgetNumbers(views []serviceView) {
	live := make(map[uint32]bool, len(views))
	for _, v := range views {
		live[v.number] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.numbers {
		if !live[n] {
			delete(s.numbers, k)
		}
	}
}

func tag(bes []records.Backend, cluster string) []clusterBackend {
	out := make([]clusterBackend, len(bes))
	for i, b := range bes {
		out[i] = clusterBackend{Backend: b, Cluster: cluster}
	}
	return out
}

// global gives backends of a remote with global addressing their global
// addresses (explicit backends carry pod addresses; selected pods already
// have global ones) and keeps each pod address in PodIP.
func (r Remote) global(bes []clusterBackend) []clusterBackend {
	if !r.GlobalCIDR.IsValid() {
		return bes
	}
	for i, b := range bes {
		if g, ok := records.GlobalAddr(r.GlobalCIDR, r.PodCIDRs, b.IP); ok {
			bes[i].IP, bes[i].PodIP = g, b.IP
		} else if ip, ok := records.PodAddr(r.GlobalCIDR, r.PodCIDRs, b.IP); ok {
			bes[i].PodIP = ip
		}
	}
	return bes
}

// mergeRemote adds the shared backends of the same global service in
// remote clusters (fed through SetRemoteServices): affinity "local" uses
// them only when no local backend is ready, "remote" prefers them.
func mergeRemote(r records.Service, local []clusterBackend, remote map[string]Remote) []clusterBackend {
	if !r.Global {
		return local
	}
	var far []clusterBackend
	for _, c := range slices.Sorted(maps.Keys(remote)) {
		for _, o := range remote[c].Services {
			if o.Global && o.IsShared() && o.Namespace == r.Namespace && o.Name == r.Name {
				far = append(far, remote[c].global(tag(services.Backends(o, remote[c].Pods), c))...)
			}
		}
	}
	ready := func(bs []clusterBackend) bool {
		return slices.ContainsFunc(bs, func(b clusterBackend) bool { return b.Ready })
	}
	switch {
	case r.Affinity == records.ClusterAffinityLocal && ready(local):
		return local
	case r.Affinity == records.ClusterAffinityRemote && ready(far):
		return far
	}
	return append(local, far...)
}

func annotations(r records.Service) map[string]string {
	out := map[string]string{}
	if r.Global {
		out[services.AnnotationGlobal] = "true"
	}
	if r.Shared != nil {
		out[services.AnnotationShared] = strconv.FormatBool(*r.Shared)
	}
	if r.Affinity != "" {
		out[services.AnnotationAffinity] = r.Affinity
	}
	return out
}

// hostPorts turns local endpoints' port mappings into HostPort frontends:
// node IP (or the mapping's host IP):hostPort → pod:containerPort.
func (s *Sync) hostPorts() []serviceView {
	var out []serviceView
	for _, ep := range s.endpoints.List() {
		if len(ep.PortMappings) == 0 {
			continue
		}
		v := serviceView{number: s.number(fmt.Sprintf("hostport/%d", ep.ID)), namespace: ep.Namespace, name: ep.Pod, source: "hostport"}
		for _, pm := range ep.PortMappings {
			host := s.cfg.NodeIP
			if ip, err := netip.ParseAddr(pm.HostIP); err == nil && !ip.IsUnspecified() && ip.Is4() {
				host = ip
			}
			name := strconv.Itoa(int(pm.HostPort))
			v.frontends = append(v.frontends, services.Frontend{Addr: netip.AddrPortFrom(host, pm.HostPort), Protocol: pm.Protocol, Kind: services.KindHostPort, PortName: name})
			v.backends = append(v.backends, clusterBackend{Cluster: s.cfg.Cluster, Backend: records.Backend{
				IP: ep.IP, Port: pm.ContainerPort, Protocol: pm.Protocol, PortName: name, Node: s.cfg.Node, Ready: true}})
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b serviceView) int { return cmp.Compare(a.number, b.number) })
	return out
}

// number is the stable number `weft service list` shows for a service.
func (s *Sync) number(key string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.numbers[key]
	if !ok {
		n = s.nextNumber
		s.nextNumber++
		s.numbers[key] = n
	}
	return n
}
