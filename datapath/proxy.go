package datapath

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/datapath/bpf"
)

// ProxyTable is the routing table where packets the datapath hands to the
// L7 proxy (skb mark bpf.MarkProxy) are delivered locally: the proxy's
// transparent listener, which the programs assigned them to, accepts them
// with their original destination.
const ProxyTable = 2004

// proxyRulePriority places the mark's rule before the main table.
const proxyRulePriority = 100

// ProxyPorts are the ports of the node's L7 proxy listeners on 127.0.0.1:
// HTTP for ingress and egress (TCP), DNS (UDP, egress). 0: none.
type ProxyPorts struct {
	Ingress, Egress, DNS uint16
}

// SetProxy writes the ports of the node's L7 proxy listeners (on
// 127.0.0.1, transparent) and installs the policy routing that delivers
// redirected packets to them (idempotent). A zero port means no listener:
// flows the policy redirects there are dropped with "proxy unavailable".
func (d *Datapath) SetProxy(p ProxyPorts) error {
	if p != (ProxyPorts{}) {
		if err := d.ensureProxyRouting(); err != nil {
			return err
		}
	}
	if err := d.objs.WeftProxy.Put(uint32(0), bpf.ProxyConfig{IngressPort: p.Ingress, EgressPort: p.Egress, DnsPort: p.DNS}); err != nil {
		return fmt.Errorf("write L7 proxy ports: %w", err)
	}
	return nil
}

// ensureProxyRouting adds `ip rule fwmark 0x5800/0xff00 lookup 2004` and
// `ip route add local 0.0.0.0/0 dev lo table 2004` when missing.
func (d *Datapath) ensureProxyRouting() error {
	h, err := d.ns.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("L7 proxy routing: %w", err)
	}
	route := &netlink.Route{
		LinkIndex: lo.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
		Table: ProxyTable, Type: syscall.RTN_LOCAL, Scope: netlink.SCOPE_HOST, Family: netlink.FAMILY_V4,
	}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("L7 proxy routing: add local route to table %d: %w", ProxyTable, err)
	}
	rules, err := proxyRules(h)
	if err != nil {
		return err
	}
	if len(rules) > 0 {
		return nil
	}
	rule := netlink.NewRule()
	rule.Family = netlink.FAMILY_V4
	mask := uint32(bpf.MarkMask)
	rule.Mark, rule.Mask = bpf.MarkProxy, &mask
	rule.Table, rule.Priority = ProxyTable, proxyRulePriority
	if err := h.RuleAdd(rule); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("L7 proxy routing: add rule fwmark %#x/%#x lookup %d: %w", bpf.MarkProxy, bpf.MarkMask, ProxyTable, err)
	}
	return nil
}

// proxyRules lists the rules ensureProxyRouting adds.
func proxyRules(h *netlink.Handle) ([]netlink.Rule, error) {
	rules, err := h.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("L7 proxy routing: list rules: %w", err)
	}
	var ours []netlink.Rule
	for _, r := range rules {
		if r.Table == ProxyTable && r.Mark == bpf.MarkProxy && r.Mask != nil && *r.Mask == bpf.MarkMask {
			ours = append(ours, r)
		}
	}
	return ours, nil
}

// removeProxyRouting deletes what ensureProxyRouting added (nothing when
// it added nothing).
func (d *Datapath) removeProxyRouting() error {
	h, err := d.ns.netlink()
	if err != nil {
		return err
	}
	defer h.Close()
	rules, err := proxyRules(h)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rules {
		if err := h.RuleDel(&r); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("L7 proxy routing: delete rule: %w", err))
		}
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: ProxyTable}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("L7 proxy routing: list table %d: %w", ProxyTable, err))...)
	}
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("L7 proxy routing: delete route from table %d: %w", ProxyTable, err))
		}
	}
	return errors.Join(errs...)
}
