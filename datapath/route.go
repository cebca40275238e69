package datapath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeProtocol tags the routes Weft owns so prune finds them.
const routeProtocol netlink.RouteProtocol = 0x57 // 'W'

// NodeRoute routes a remote node's pod CIDR via its underlay address
// (native mode).
type NodeRoute struct {
	PodCIDR netip.Prefix
	NodeIP  netip.Addr
}

func ipNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// UpsertNodeRoute installs or replaces the route of a remote pod CIDR: via
// the node's underlay address in native mode, into the VXLAN device in
// tunnel mode (for the host's own traffic; pods' traffic is steered by the
// ipcache).
func (d *Datapath) UpsertNodeRoute(ctx context.Context, r NodeRoute) error {
	rt := &netlink.Route{Dst: ipNet(r.PodCIDR), Gw: r.NodeIP.AsSlice(), Protocol: routeProtocol}
	if d.cfg.Mode == ModeTunnel {
		rt = &netlink.Route{Dst: ipNet(r.PodCIDR), LinkIndex: d.tunnelIfindex, Scope: netlink.SCOPE_LINK, Protocol: routeProtocol}
	}
	if err := d.nl.RouteReplace(rt); err != nil {
		return fmt.Errorf("replace route %s via %s: %w", r.PodCIDR, r.NodeIP, err)
	}
	return nil
}

// DeleteNodeRoute removes the route of a pod CIDR; a missing route is not
// an error.
func (d *Datapath) DeleteNodeRoute(ctx context.Context, podCIDR netip.Prefix) error {
	return d.deleteRoutes(func(r netlink.Route) bool {
		return d.isNodeRoute(r) && r.Dst.String() == podCIDR.Masked().String()
	})
}

// PruneNodeRoutes removes Weft's node routes whose pod CIDR is not in keep.
func (d *Datapath) PruneNodeRoutes(ctx context.Context, keep []netip.Prefix) error {
	want := map[string]bool{}
	for _, p := range keep {
		want[p.Masked().String()] = true
	}
	return d.deleteRoutes(func(r netlink.Route) bool {
		return d.isNodeRoute(r) && !want[r.Dst.String()]
	})
}

// isNodeRoute tells node routes from endpoint routes (/32 to a veth).
func (d *Datapath) isNodeRoute(r netlink.Route) bool {
	return r.Dst != nil && (r.Gw != nil || (d.tunnelIfindex != 0 && r.LinkIndex == d.tunnelIfindex))
}

// endpointRoute points a local pod address at its host-side veth, so the
// host reaches it.
func (d *Datapath) endpointRoute(ip netip.Addr, lnk netlink.Link) error {
	rt := &netlink.Route{
		Dst:       ipNet(netip.PrefixFrom(ip, ip.BitLen())),
		LinkIndex: lnk.Attrs().Index,
		Scope:     netlink.SCOPE_LINK,
		Protocol:  routeProtocol,
	}
	if err := d.nl.RouteReplace(rt); err != nil {
		return fmt.Errorf("replace route %s dev %s: %w", ip, lnk.Attrs().Name, err)
	}
	return nil
}

// deleteEndpointRoute removes the route endpointRoute made: one request
// naming the route (destination, device, scope and Weft's protocol), not a
// dump of the routing table, so deleting a pod costs the same with 10 or
// 10,000 pods on the node. A route already gone is not an error.
func (d *Datapath) deleteEndpointRoute(ip netip.Addr, lnk netlink.Link) error {
	rt := &netlink.Route{
		Dst:       ipNet(netip.PrefixFrom(ip, ip.BitLen())),
		LinkIndex: lnk.Attrs().Index,
		Scope:     netlink.SCOPE_LINK,
		Protocol:  routeProtocol,
		Table:     unix.RT_TABLE_MAIN,
	}
	if err := d.nl.RouteDel(rt); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("delete route %s dev %s: %w", ip, lnk.Attrs().Name, err)
	}
	return nil
}

// deleteRoutes deletes Weft's IPv4 main-table routes that match.
func (d *Datapath) deleteRoutes(match func(netlink.Route) bool) error {
	routes, err := d.nl.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: routeProtocol, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var errs []error
	for _, r := range routes {
		if !match(r) {
			continue
		}
		if err := d.nl.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete route %s: %w", r.Dst, err))
		}
	}
	return errors.Join(errs...)
}
