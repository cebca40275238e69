package clustermesh

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/weftnet/weft/api/adminapi"
)

// InfoToAPI converts Info to its admin API message.
func InfoToAPI(i Info) *adminapi.ClusterInfo {
	out := &adminapi.ClusterInfo{Name: i.Name, Id: i.ID, RoutingMode: i.Routing, CaPem: i.CA, Endpoints: i.Endpoints, Relay: i.Relay}
	for _, p := range i.PodCIDRs {
		out.PodCidrs = append(out.PodCidrs, p.String())
	}
	if i.GlobalCIDR.IsValid() {
		out.GlobalCidr = i.GlobalCIDR.String()
	}
	for _, p := range i.ServiceCIDRs {
		out.ServiceCidrs = append(out.ServiceCidrs, p.String())
	}
	return out
}

// InfoFromAPI converts an admin API message to Info and validates it.
func InfoFromAPI(c *adminapi.ClusterInfo) (Info, error) {
	i := Info{Name: c.GetName(), ID: c.GetId(), Routing: c.GetRoutingMode(), CA: c.GetCaPem(), Endpoints: c.GetEndpoints(), Relay: c.GetRelay()}
	for _, s := range c.GetPodCidrs() {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Info{}, fmt.Errorf("cluster %s: pod CIDR %q: want a prefix such as 10.100.0.0/16", i.Name, s)
		}
		i.PodCIDRs = append(i.PodCIDRs, p)
	}
	for _, s := range c.GetServiceCidrs() {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Info{}, fmt.Errorf("cluster %s: service CIDR %q: want a prefix such as 10.96.0.0/16", i.Name, s)
		}
		i.ServiceCIDRs = append(i.ServiceCIDRs, p)
	}
	if s := c.GetGlobalCidr(); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Info{}, fmt.Errorf("cluster %s: global CIDR %q: want a prefix such as 242.1.0.0/16", i.Name, s)
		}
		i.GlobalCIDR = p
	}
	if i.Relay != "" {
		if _, _, err := net.SplitHostPort(i.Relay); err != nil {
			return Info{}, fmt.Errorf("cluster %s: relay address %q: want host:port", i.Name, i.Relay)
		}
	}
	return i, i.Validate()
}
