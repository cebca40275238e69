package agent

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// resolveUnderlay finds the node address and its device: the given ones,
// or the first IPv4 address of the device holding the default route.
func resolveUnderlay(nodeIP, device string) (netip.Addr, string, error) {
	if device == "" && nodeIP == "" {
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return netip.Addr{}, "", fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.String() == "0.0.0.0/0" {
				lnk, err := netlink.LinkByIndex(r.LinkIndex)
				if err == nil {
					device = lnk.Attrs().Name
					break
				}
			}
		}
		if device == "" {
			return netip.Addr{}, "", fmt.Errorf("find the underlay: no default route; give --node-ip or --underlay-device")
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("list links: %w", err)
	}
	for _, lnk := range links {
		if device != "" && lnk.Attrs().Name != device {
			continue
		}
		addrs, err := netlink.AddrList(lnk, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			a, ok := netip.AddrFromSlice(ad.IP.To4())
			if !ok || a.IsLoopback() {
				continue
			}
			if nodeIP == "" || a.String() == nodeIP {
				return a, lnk.Attrs().Name, nil
			}
		}
	}
	if device != "" {
		return netip.Addr{}, "", fmt.Errorf("find the underlay: device %q has no IPv4 address%s", device, matching(nodeIP))
	}
	return netip.Addr{}, "", fmt.Errorf("find the underlay: no device holds --node-ip %s", nodeIP)
}

func matching(ip string) string {
	if ip == "" {
		return ""
	}
	return " " + ip
}

func linkByName(name string) (netlink.Link, error) { return netlink.LinkByName(name) }
