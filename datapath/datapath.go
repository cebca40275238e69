package datapath

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/datapath/bpf"
)

// Datapath is one node's loaded datapath. Its methods are safe for
// concurrent use.
type Datapath struct {
	cfg     Config
	log     *slog.Logger
	objs    *bpf.Objects
	ns      nsRunner
	nl      *netlink.Handle
	linkDir string
	// tunnelIfindex is the VXLAN device's ifindex in tunnel mode, else 0.
	tunnelIfindex int
	// clsact is set once an attachment fell back from tcx to clsact.
	clsact atomic.Bool

	mu       sync.Mutex
	enforced map[uint16]uint16 // endpoint id -> EP_F_POLICY_* flags
	lb       *lbState
}

// New loads (or reloads) the node's programs, reusing pinned maps, and
// reconciles the node-level devices and attachments: the VXLAN device and
// from-overlay in tunnel mode, from-netdev on the underlay, the socket load
// balancer on the cgroup. Calling New again after Close converges.
func New(ctx context.Context, cfg Config) (*Datapath, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate datapath config: %w", err)
	}
	if err := bpf.EnsureFS(cfg.BPFFS); err != nil {
		return nil, err
	}
	d := &Datapath{
		cfg:      cfg,
		log:      cfg.Log.With("component", "datapath", "node", cfg.Node),
		linkDir:  filepath.Join(cfg.PinDir(), "links"),
		enforced: map[uint16]uint16{},
	}
	if err := os.MkdirAll(d.linkDir, 0o700); err != nil {
		return nil, fmt.Errorf("create link pin dir: %w", err)
	}
	var err error
	if d.ns, err = openNS(cfg.NetNS); err != nil {
		return nil, err
	}
	if d.nl, err = d.ns.netlink(); err != nil {
		d.ns.close()
		return nil, err
	}
	if d.objs, err = bpf.Load(cfg.PinDir()); err != nil {
		d.Close()
		return nil, fmt.Errorf("load programs for node %s: %w", cfg.Node, err)
	}
	if err := d.setup(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if d.lb, err = restoreLB(d.objs); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// setup reconciles sysctls, devices, node-level attachments and the config
// map.
func (d *Datapath) setup(ctx context.Context) error {
	for _, kv := range [][2]string{
		{"net/ipv4/ip_forward", "1"},
		{"net/ipv4/conf/all/rp_filter", "0"},
		{"net/ipv4/conf/default/rp_filter", "0"},
		{"net/ipv4/conf/" + d.cfg.UnderlayDevice + "/rp_filter", "0"},
	} {
		if err := d.ns.sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	conf := bpf.Config{Mode: bpf.ModeNative, TunnelPort: d.cfg.TunnelPort}
	if d.cfg.TraceAllForwards {
		conf.Flags |= bpf.ConfigTraceAll
	}
	if d.cfg.Mode == ModeTunnel {
		conf.Mode = bpf.ModeTunnel
	}
	if err := d.setupOverlay(ctx, &conf); err != nil {
		return err
	}
	if err := d.objs.WeftConfig.Put(uint32(0), conf); err != nil {
		return fmt.Errorf("write config map: %w", err)
	}
	if err := d.setupMasquerade(); err != nil {
		return err
	}
	if err := d.attachIngress(d.cfg.UnderlayDevice, "from_netdev", d.objs.FromNetdev); err != nil {
		return err
	}
	if err := d.attachEgress(d.cfg.UnderlayDevice, "to_netdev", d.objs.ToNetdev); err != nil {
		return err
	}
	if d.cfg.CgroupPath == "" {
		return nil
	}
	for _, p := range []struct {
		name string
		typ  ebpf.AttachType
		prog *ebpf.Program
	}{
		{"sock_connect4", ebpf.AttachCGroupInet4Connect, d.objs.SockConnect4},
		{"sock_sendmsg4", ebpf.AttachCGroupUDP4Sendmsg, d.objs.SockSendmsg4},
		{"sock_recvmsg4", ebpf.AttachCGroupUDP4Recvmsg, d.objs.SockRecvmsg4},
	} {
		if err := d.attachCgroup(p.name, p.typ, p.prog); err != nil {
			return err
		}
	}
	return nil
}

// setupOverlay reconciles the VXLAN device and its programs. The device
// exists in both modes: native mode uses it for NodePort traffic to
// backends on other nodes.
func (d *Datapath) setupOverlay(ctx context.Context, conf *bpf.Config) error {
	ifindex, err := d.ensureVXLAN(ctx)
	if err != nil {
		return err
	}
	conf.TunnelIfindex = uint32(ifindex)
	d.tunnelIfindex = ifindex
	if err := d.attachIngress(d.cfg.TunnelDevice, "from_overlay", d.objs.FromOverlay); err != nil {
		return err
	}
	return d.attachEgress(d.cfg.TunnelDevice, "to_overlay", d.objs.ToOverlay)
}

// Close releases file descriptors. Pinned maps and attachments stay, so
// traffic keeps flowing until the next New.
func (d *Datapath) Close() error {
	var errs []error
	if d.objs != nil {
		errs = append(errs, d.objs.Close())
	}
	if d.nl != nil {
		d.nl.Close()
	}
	d.ns.close()
	return errors.Join(errs...)
}

// Uninstall removes everything the node's datapath created: attachments,
// the VXLAN device, routes, the L7 proxy's policy routing and pins. The Datapath is closed afterwards.
func (d *Datapath) Uninstall(ctx context.Context) error {
	var errs []error
	errs = append(errs, d.detachTC(d.cfg.UnderlayDevice, "from_netdev"))
	var (
		key  bpf.EndpointKey
		info bpf.EndpointInfo
	)
	it := d.objs.WeftEndpoints.Iterate()
	for it.Next(&key, &info) {
		if lnk, err := d.nl.LinkByIndex(int(info.Ifindex)); err == nil {
			errs = append(errs, d.detachEndpoint(lnk.Attrs().Name))
		}
	}
	errs = append(errs, it.Err())
	if lnk, err := d.nl.LinkByName(d.cfg.TunnelDevice); err == nil {
		errs = append(errs, d.nl.LinkDel(lnk))
	}
	pins, _ := filepath.Glob(filepath.Join(d.linkDir, "*"))
	for _, p := range pins {
		errs = append(errs, unpinLink(p))
	}
	errs = append(errs, d.deleteRoutes(func(netlink.Route) bool { return true }))
	errs = append(errs, d.removeProxyRouting())
	errs = append(errs, d.Close())
	errs = append(errs, os.RemoveAll(d.cfg.PinDir()))
	os.Remove(filepath.Dir(d.cfg.PinDir())) // the shared weft/ dir, once empty
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("uninstall datapath of %s: %w", d.cfg.Node, err)
	}
	return nil
}
