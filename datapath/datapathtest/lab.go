package datapathtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/weftnet/weft/datapath"
)

// CgroupRoot returns where cgroup v2 is mounted (/sys/fs/cgroup/unified on
// hybrid hosts, /sys/fs/cgroup on pure v2 ones).
func CgroupRoot() (string, error) {
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("read mounts: %w", err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[2] == "cgroup2" {
			return f[1], nil
		}
	}
	return "", fmt.Errorf("no cgroup2 mount in /proc/self/mounts")
}

// Lab is a throwaway cluster on one kernel.
type Lab struct {
	t     testing.TB
	ID    string
	Mode  datapath.Mode
	Nodes []*Node
	ulNS  string
	cgDir string
	// kernel: no Weft datapath, kernel forwarding only (baselines).
	kernel bool
	opts   []Option
}

// Node is a node namespace with its datapath.
type Node struct {
	lab        *Lab
	Index      int
	Name       string // datapath node name, unique per lab
	NS         string // netns name
	UnderlayIP netip.Addr
	PodCIDR    netip.Prefix
	Cgroup     string
	DP         *datapath.Datapath
	Config     datapath.Config
	Pods       []*Pod
}

// Pod is a pod namespace behind a veth of its node.
type Pod struct {
	Node       *Node
	Name       string
	NS         string
	ID         uint16
	IP         netip.Addr
	Identity   uint32
	HostDevice string
	MAC        net.HardwareAddr
}

// Option adjusts every node's datapath configuration.
type Option func(*datapath.Config)

// WithLegacyTC attaches with clsact + cls_bpf instead of tcx.
func WithLegacyTC() Option { return func(c *datapath.Config) { c.LegacyTC = true } }

// New builds nodes node namespaces on an underlay bridge, each running a
// datapath in mode, and registers their removal with t.Cleanup.
func New(t testing.TB, mode datapath.Mode, nodes int, opts ...Option) *Lab {
	t.Helper()
	return newLab(t, mode, nodes, false, opts)
}

func newLab(t testing.TB, mode datapath.Mode, nodes int, kernel bool, opts []Option) *Lab {
	b := make([]byte, 3)
	rand.Read(b)
	l := &Lab{t: t, ID: hex.EncodeToString(b), Mode: mode, kernel: kernel, opts: opts}
	l.ulNS = "weft-" + l.ID + "-ul"
	t.Cleanup(l.cleanup)
	root, err := CgroupRoot()
	if err != nil {
		t.Fatal(err)
	}
	l.cgDir = filepath.Join(root, "weft-test-"+l.ID)
	if err := os.Mkdir(l.cgDir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	l.must(newNamedNS(l.ulNS))
	ul := l.handle(l.ulNS)
	defer ul.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
	l.must(ul.LinkAdd(br))
	l.must(ul.LinkSetUp(br))
	for i := 1; i <= nodes; i++ {
		l.addNode(ul, br, i)
	}
	return l
}

func (l *Lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatal(err)
	}
}

func (l *Lab) handle(ns string) *netlink.Handle {
	l.t.Helper()
	nsh, err := netns.GetFromName(ns)
	l.must(err)
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	l.must(err)
	return h
}

func (l *Lab) addNode(ul *netlink.Handle, br *netlink.Bridge, i int) {
	n := &Node{
		lab:        l,
		Index:      i,
		Name:       fmt.Sprintf("test-%s-n%d", l.ID, i),
		NS:         fmt.Sprintf("weft-%s-n%d", l.ID, i),
		UnderlayIP: netip.AddrFrom4([4]byte{192, 168, 200, byte(i)}),
		PodCIDR:    netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 200, byte(i), 0}), 24),
		Cgroup:     filepath.Join(l.cgDir, fmt.Sprintf("n%d", i)),
	}
	l.Nodes = append(l.Nodes, n) // cleaned up from here on
	l.must(os.Mkdir(n.Cgroup, 0o755))
	l.must(newNamedNS(n.NS))
	nsh, err := netns.GetFromName(n.NS)
	l.must(err)
	defer nsh.Close()
	peer := fmt.Sprintf("n%d", i)
	l.must(ul.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: peer, MasterIndex: br.Index, MTU: 1500},
		PeerName:      "ul0",
		PeerNamespace: netlink.NsFd(nsh),
	}))
	pl, err := ul.LinkByName(peer)
	l.must(err)
	l.must(ul.LinkSetUp(pl))

	h := l.handle(n.NS)
	defer h.Close()
	lo, err := h.LinkByName("lo")
	l.must(err)
	l.must(h.LinkSetUp(lo))
	dev, err := h.LinkByName("ul0")
	l.must(err)
	l.must(h.AddrAdd(dev, &netlink.Addr{IPNet: &net.IPNet{IP: n.UnderlayIP.AsSlice(), Mask: net.CIDRMask(24, 32)}}))
	l.must(h.LinkSetUp(dev))

	n.Config = datapath.DefaultConfig()
	n.Config.Node = n.Name
	n.Config.NetNS = filepath.Join("/run/netns", n.NS)
	n.Config.Mode = l.Mode
	n.Config.UnderlayDevice = "ul0"
	n.Config.CgroupPath = n.Cgroup
	n.Config.Log = slog.New(slog.NewTextHandler(testWriter{l.t}, nil))
	for _, o := range l.opts {
		o(&n.Config)
	}
	if l.kernel {
		l.must(sysctls(n.NS, "net/ipv4/ip_forward", "net/ipv4/conf/all/rp_filter", "net/ipv4/conf/default/rp_filter"))
		return
	}
	n.Start()
}

// Start (re)creates the node's datapath, as an agent (re)start does.
func (n *Node) Start() {
	n.lab.t.Helper()
	dp, err := datapath.New(context.Background(), n.Config)
	n.lab.must(err)
	n.DP = dp
}

// AddPod creates pod name on node n with identity and registers it as an
// endpoint of n's datapath. Wire publishes it to the other nodes.
func (n *Node) AddPod(name string, identity uint32) *Pod {
	l := n.lab
	l.t.Helper()
	p := &Pod{
		Node:       n,
		Name:       name,
		NS:         fmt.Sprintf("weft-%s-n%d-%s", l.ID, n.Index, name),
		ID:         uint16(len(n.Pods) + 1),
		IP:         netip.AddrFrom4([4]byte{10, 200, byte(n.Index), byte(len(n.Pods) + 10)}),
		Identity:   identity,
		HostDevice: fmt.Sprintf("lxc%d", len(n.Pods)+1),
	}
	n.Pods = append(n.Pods, p) // cleaned up from here on
	l.must(newNamedNS(p.NS))
	pns, err := netns.GetFromName(p.NS)
	l.must(err)
	defer pns.Close()
	mtu := n.podMTU()

	h := l.handle(n.NS)
	defer h.Close()
	l.must(h.LinkAdd(&netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: p.HostDevice, MTU: mtu},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(pns),
	}))
	host, err := h.LinkByName(p.HostDevice)
	l.must(err)

	ph := l.handle(p.NS)
	defer ph.Close()
	lo, err := ph.LinkByName("lo")
	l.must(err)
	l.must(ph.LinkSetUp(lo))
	eth, err := ph.LinkByName("eth0")
	l.must(err)
	p.MAC = eth.Attrs().HardwareAddr
	l.must(ph.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: p.IP.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
	l.must(ph.LinkSetUp(eth))
	gw := net.IPv4(169, 254, 1, 1)
	l.must(ph.NeighAdd(&netlink.Neigh{LinkIndex: eth.Attrs().Index, IP: gw, HardwareAddr: host.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}))
	l.must(ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK}))
	l.must(ph.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}}))

	if l.kernel {
		l.must(h.LinkSetUp(host))
		l.must(h.RouteAdd(&netlink.Route{LinkIndex: host.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: p.IP.AsSlice(), Mask: net.CIDRMask(32, 32)}}))
		return p
	}
	l.must(n.DP.UpsertEndpoint(context.Background(), p.Endpoint()))
	return p
}

// Endpoint is the pod as its node's datapath sees it.
func (p *Pod) Endpoint() datapath.Endpoint {
	return datapath.Endpoint{ID: p.ID, IP: p.IP, Identity: p.Identity, HostDevice: p.HostDevice, MAC: p.MAC, NetNS: filepath.Join(netnsDir, p.NS)}
}

func (l *Lab) cleanup() {
	for _, n := range l.Nodes {
		if n.DP != nil {
			if err := n.DP.Uninstall(context.Background()); err != nil {
				l.t.Errorf("uninstall %s: %v", n.Name, err)
			}
		}
		for _, p := range n.Pods {
			l.deleteNS(p.NS)
		}
		l.deleteNS(n.NS)
		os.Remove(n.Cgroup)
		os.RemoveAll(n.Config.PinDir()) // nothing left, unless Uninstall failed
	}
	l.deleteNS(l.ulNS)
	os.Remove(l.cgDir)
}

// deleteNS removes a named namespace this lab created, if it exists.
func (l *Lab) deleteNS(name string) {
	if _, err := os.Stat(filepath.Join(netnsDir, name)); err != nil {
		return
	}
	if err := netns.DeleteNamed(name); err != nil {
		l.t.Errorf("delete netns %s: %v", name, err)
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}
