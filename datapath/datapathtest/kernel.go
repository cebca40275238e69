package datapathtest

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/datapath"
)

// NewKernel builds the same topology as New without any Weft datapath:
// pods are reached through plain routes (native) or a plain VXLAN device
// (tunnel), as baselines for benchmarks. Only two nodes are supported in
// tunnel mode (point-to-point VXLAN).
func NewKernel(t testing.TB, mode datapath.Mode, nodes int) *Lab {
	t.Helper()
	if mode == datapath.ModeTunnel && nodes != 2 {
		t.Fatalf("kernel tunnel lab supports 2 nodes, not %d", nodes)
	}
	return newLab(t, mode, nodes, true, nil)
}

func (n *Node) podMTU() int {
	if n.DP != nil {
		mtu, err := n.DP.PodMTU()
		n.lab.must(err)
		return mtu
	}
	if n.lab.Mode == datapath.ModeTunnel {
		return 1500 - 50
	}
	return 1500
}

func sysctls(ns string, keys ...string) error {
	return InNS(ns, func() error {
		for _, k := range keys {
			v := "1"
			if k != "net/ipv4/ip_forward" {
				v = "0" // rp_filter
			}
			if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
				return fmt.Errorf("set %s: %w", k, err)
			}
		}
		return nil
	})
}

// wireKernel routes pod CIDRs between nodes without BPF.
func (l *Lab) wireKernel() {
	for _, n := range l.Nodes {
		h := l.handle(n.NS)
		for _, m := range l.Nodes {
			if m == n {
				continue
			}
			dst := &net.IPNet{IP: m.PodCIDR.Addr().AsSlice(), Mask: net.CIDRMask(m.PodCIDR.Bits(), 32)}
			if l.Mode == datapath.ModeNative {
				l.must(h.RouteReplace(&netlink.Route{Dst: dst, Gw: m.UnderlayIP.AsSlice()}))
				continue
			}
			vx := l.kernelVXLAN(h, n, m)
			l.must(h.RouteReplace(&netlink.Route{Dst: dst, Gw: net.IPv4(10, 250, 0, byte(m.Index)), LinkIndex: vx.Attrs().Index, Flags: int(netlink.FLAG_ONLINK)}))
		}
		h.Close()
	}
}

// kernelVXLAN creates vx0 on n, point-to-point to m.
func (l *Lab) kernelVXLAN(h *netlink.Handle, n, m *Node) netlink.Link {
	if lnk, err := h.LinkByName("vx0"); err == nil {
		return lnk
	}
	ul, err := h.LinkByName("ul0")
	l.must(err)
	vx := &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: "vx0", MTU: 1450},
		VxlanId:      1,
		VtepDevIndex: ul.Attrs().Index,
		SrcAddr:      n.UnderlayIP.AsSlice(),
		Group:        m.UnderlayIP.AsSlice(),
		Port:         8472,
	}
	l.must(h.LinkAdd(vx))
	lnk, err := h.LinkByName("vx0")
	l.must(err)
	l.must(h.AddrAdd(lnk, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 250, 0, byte(n.Index)), Mask: net.CIDRMask(24, 32)}}))
	l.must(h.LinkSetUp(lnk))
	l.must(sysctls(n.NS, "net/ipv4/conf/vx0/rp_filter"))
	return lnk
}
