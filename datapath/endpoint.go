package datapath

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/datapath/bpf"
)

// Endpoint is a local pod as the datapath sees it.
type Endpoint struct {
	// ID is the node-local endpoint id, the policy map key.
	ID uint16
	// IP is the pod's address.
	IP netip.Addr
	// Identity is the pod's security identity.
	Identity uint32
	// HostDevice is the host-side veth in the node's namespace.
	HostDevice string
	// MAC is the pod-side interface's address.
	MAC net.HardwareAddr
	// NetNS is the path of the pod's network namespace (optional): with
	// it, flows the socket load balancer translated for the pod are
	// reported with their frontend.
	NetNS string
}

// UpsertEndpoint writes ep into the endpoint map, routes its address to
// its veth and attaches from-container to the veth's ingress. Policy
// enforcement set by SetPolicy is kept.
func (d *Datapath) UpsertEndpoint(ctx context.Context, ep Endpoint) error {
	if len(ep.MAC) != 6 || !ep.IP.IsValid() || ep.ID == 0 {
		return fmt.Errorf("invalid endpoint %d (ip %v, mac %v): want an id > 0, an address and a 6-byte MAC", ep.ID, ep.IP, ep.MAC)
	}
	lnk, err := d.nl.LinkByName(ep.HostDevice)
	if err != nil {
		return fmt.Errorf("find endpoint device %s: %w", ep.HostDevice, err)
	}
	if err := d.ns.sysctl("net/ipv4/conf/"+ep.HostDevice+"/rp_filter", "0"); err != nil {
		return err
	}
	if err := d.nl.LinkSetUp(lnk); err != nil {
		return fmt.Errorf("set %s up: %w", ep.HostDevice, err)
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	key := bpf.NewEndpointKey(ep.IP)
	info := bpf.EndpointInfo{
		Ifindex:  uint32(lnk.Attrs().Index),
		Identity: ep.Identity,
		Id:       ep.ID,
		Flags:    d.enforced[ep.ID],
	}
	var old bpf.EndpointInfo
	if _, known := d.enforced[ep.ID]; !known && d.objs.WeftEndpoints.Lookup(key, &old) == nil && old.Id == ep.ID {
		info.Flags = old.Flags // set by SetPolicy before a restart
		d.enforced[ep.ID] = old.Flags
	}
	copy(info.Mac[:], ep.MAC)
	copy(info.NodeMac[:], lnk.Attrs().HardwareAddr)
	if err := d.objs.WeftEndpoints.Put(key, info); err != nil {
		return fmt.Errorf("write endpoint %s: %w", ep.IP, err)
	}
	if err := d.endpointRoute(ep.IP, lnk); err != nil {
		return err
	}
	if err := d.notePodNetNS(ep.NetNS, ep.IP); err != nil {
		// Only flow records lose their service frontend: not a reason
		// to refuse the pod.
		d.log.Warn("flows of this pod will not name the service they were load-balanced for", "endpoint", ep.ID, "ip", ep.IP, "error", err)
	}
	if err := d.attachIngress(ep.HostDevice, "from_container", d.objs.FromContainer); err != nil {
		return err
	}
	return d.attachEgress(ep.HostDevice, "to_container", d.objs.ToContainer)
}

// endpointPrograms are attached to every endpoint's host-side veth.
var endpointPrograms = []string{"from_container", "to_container"}

func (d *Datapath) detachEndpoint(dev string) error {
	var errs []error
	for _, name := range endpointPrograms {
		errs = append(errs, d.detachTC(dev, name))
	}
	return errors.Join(errs...)
}

// DeleteEndpoint removes the endpoint with address ip, its route and its
// attachment. A missing endpoint is not an error.
func (d *Datapath) DeleteEndpoint(ctx context.Context, ip netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deleteEndpoint(bpf.NewEndpointKey(ip))
}

func (d *Datapath) deleteEndpoint(key bpf.EndpointKey) error {
	var info bpf.EndpointInfo
	err := d.objs.WeftEndpoints.Lookup(key, &info)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up endpoint: %w", err)
	}
	ip := bpf.AddrFrom16(key.Family, key.Addr)
	var errs []error
	if lnk, err := d.nl.LinkByIndex(int(info.Ifindex)); err == nil {
		errs = append(errs, d.detachEndpoint(lnk.Attrs().Name), d.deleteEndpointRoute(ip, lnk))
	} // else the device is gone, and the kernel removed its route with it
	if err := d.objs.WeftEndpoints.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("delete endpoint %s: %w", ip, err))
	}
	if err := d.deletePolicy(info.Id); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, d.forgetPodNetNS(ip))
	delete(d.enforced, info.Id)
	return errors.Join(errs...)
}

// PruneEndpoints deletes every endpoint whose address is not in keep, and
// attachments left on devices no endpoint uses any more.
func (d *Datapath) PruneEndpoints(ctx context.Context, keep []netip.Addr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[bpf.EndpointKey]bool{}
	for _, ip := range keep {
		want[bpf.NewEndpointKey(ip)] = true
	}
	var (
		key   bpf.EndpointKey
		info  bpf.EndpointInfo
		stale []bpf.EndpointKey
		used  = map[string]bool{}
	)
	it := d.objs.WeftEndpoints.Iterate()
	for it.Next(&key, &info) {
		if !want[key] {
			stale = append(stale, key)
		} else if lnk, err := d.nl.LinkByIndex(int(info.Ifindex)); err == nil {
			used[lnk.Attrs().Name] = true
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate endpoints: %w", err)
	}
	var errs []error
	for _, k := range stale {
		errs = append(errs, d.deleteEndpoint(k))
	}
	for _, name := range endpointPrograms {
		pins, _ := filepath.Glob(d.linkPin(name, "*"))
		for _, p := range pins {
			if dev := strings.TrimPrefix(filepath.Base(p), name+"@"); !used[dev] {
				errs = append(errs, unpinLink(p))
			}
		}
	}
	return errors.Join(errs...)
}
