package datapath

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
)

// tunnelOverhead is what VXLAN over IPv4 adds to a frame.
const tunnelOverhead = 50

// ensureVXLAN creates the node's VXLAN device in external (collect
// metadata) mode, or keeps a matching one, and returns its ifindex.
func (d *Datapath) ensureVXLAN(ctx context.Context) (int, error) {
	name := d.cfg.TunnelDevice
	ul, err := d.nl.LinkByName(d.cfg.UnderlayDevice)
	if err != nil {
		return 0, fmt.Errorf("find underlay device %s: %w", d.cfg.UnderlayDevice, err)
	}
	mtu := ul.Attrs().MTU - tunnelOverhead
	if lnk, err := d.nl.LinkByName(name); err == nil {
		vx, ok := lnk.(*netlink.Vxlan)
		if ok && vx.FlowBased && vx.Port == int(d.cfg.TunnelPort) {
			if lnk.Attrs().MTU != mtu {
				if err := d.nl.LinkSetMTU(lnk, mtu); err != nil {
					return 0, fmt.Errorf("set mtu of %s: %w", name, err)
				}
			}
			return lnk.Attrs().Index, d.vxlanUp(lnk)
		}
		d.log.Info("replacing device that is not an external VXLAN", "device", name)
		if err := d.nl.LinkDel(lnk); err != nil {
			return 0, fmt.Errorf("delete device %s: %w", name, err)
		}
	}
	vx := &netlink.Vxlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu},
		FlowBased: true,
		Port:      int(d.cfg.TunnelPort),
	}
	if err := d.nl.LinkAdd(vx); err != nil {
		return 0, fmt.Errorf("create vxlan device %s: %w", name, err)
	}
	lnk, err := d.nl.LinkByName(name)
	if err != nil {
		return 0, fmt.Errorf("find device %s: %w", name, err)
	}
	return lnk.Attrs().Index, d.vxlanUp(lnk)
}

// vxlanUp brings the device up without ARP: the host's packets routed to
// it get their tunnel key from to_overlay, and receivers rewrite L2.
func (d *Datapath) vxlanUp(lnk netlink.Link) error {
	name := lnk.Attrs().Name
	if err := d.nl.LinkSetARPOff(lnk); err != nil {
		return fmt.Errorf("disable arp on %s: %w", name, err)
	}
	if err := d.nl.LinkSetUp(lnk); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return d.ns.sysctl("net/ipv4/conf/"+name+"/rp_filter", "0")
}

// PodMTU is the MTU pods of this node must use: the underlay's, less the
// tunnel overhead in tunnel mode.
func (d *Datapath) PodMTU() (int, error) {
	ul, err := d.nl.LinkByName(d.cfg.UnderlayDevice)
	if err != nil {
		return 0, fmt.Errorf("find underlay device %s: %w", d.cfg.UnderlayDevice, err)
	}
	if d.cfg.Mode == ModeTunnel {
		return ul.Attrs().MTU - tunnelOverhead, nil
	}
	return ul.Attrs().MTU, nil
}
