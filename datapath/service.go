package datapath

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/weftnet/weft/datapath/bpf"
)

// ServiceType is the Kubernetes-style kind of a service frontend.
type ServiceType string

const (
	ClusterIP    ServiceType = "ClusterIP"
	NodePort     ServiceType = "NodePort"
	ExternalIP   ServiceType = "ExternalIP"
	LoadBalancer ServiceType = "LoadBalancer"
)

// Service is one frontend (address, port, protocol) and its backends. A
// Kubernetes service with a ClusterIP, a NodePort on two node addresses and
// an external IP is four Services here.
type Service struct {
	Frontend netip.AddrPort
	Proto    uint8
	Type     ServiceType
	Backends []Backend
	// SessionAffinity is the ClientIP affinity timeout; 0 disables it.
	SessionAffinity time.Duration
}

// Backend is a service backend. NodePort, ExternalIP and LoadBalancer
// frontends are DNATed in tc to any backend; remote ones are reached over
// the VXLAN device (in native mode too) so that replies return to this
// node for reverse NAT.
type Backend struct {
	Addr netip.AddrPort
}

// ServiceKey names a frontend.
type ServiceKey struct {
	Frontend netip.AddrPort
	Proto    uint8
}

// UpsertService installs or updates a frontend. Backends are written
// before the slots that name them and the backend count is raised last and
// lowered first, so a concurrent lookup never sees a missing backend.
func (d *Datapath) UpsertService(ctx context.Context, s Service) error {
	flags, err := serviceFlags(s.Type)
	if err != nil {
		return err
	}
	var addrs []netip.AddrPort
	for _, b := range s.Backends {
		addrs = append(addrs, b.Addr)
	}
	slices.SortFunc(addrs, netip.AddrPort.Compare)
	addrs = slices.Compact(addrs)
	if s.SessionAffinity > 0 {
		flags |= bpf.ServiceAffinity
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	key := bpf.NewServiceKey(s.Frontend, s.Proto)
	id := d.lb.serviceID(key)
	ids := make([]uint32, 0, len(addrs))
	for _, b := range addrs {
		bid, err := d.lb.acquireBackend(d.objs, b, s.Proto)
		if err != nil {
			return err
		}
		ids = append(ids, bid)
	}
	for i, bid := range ids {
		if err := d.objs.WeftLbSlots.Put(bpf.SlotKey{ServiceId: id, Slot: uint32(i + 1)}, bid); err != nil {
			return fmt.Errorf("write slot %d of %s: %w", i+1, s.Frontend, err)
		}
	}
	fam, addr := bpf.Addr16(s.Frontend.Addr())
	if err := d.objs.WeftLbRevnat.Put(id, bpf.RevNAT{Addr: addr, Port: bpf.Htons(s.Frontend.Port()), Family: fam}); err != nil {
		return fmt.Errorf("write reverse nat of %s: %w", s.Frontend, err)
	}
	val := bpf.ServiceValue{Id: id, Count: uint16(len(ids)), Flags: flags, AffinityTimeout: uint32(s.SessionAffinity / time.Second)}
	if err := d.objs.WeftLbServices.Put(key, val); err != nil {
		return fmt.Errorf("write service %s: %w", s.Frontend, err)
	}
	return d.lb.setSlots(d.objs, id, ids)
}

func serviceFlags(t ServiceType) (uint16, error) {
	switch t {
	case ClusterIP:
		return bpf.ServiceSock, nil
	case NodePort, ExternalIP, LoadBalancer:
		return bpf.ServiceSock | bpf.ServiceTC, nil
	}
	return 0, fmt.Errorf("invalid service type %q: want ClusterIP, NodePort, ExternalIP or LoadBalancer", t)
}

// DeleteService removes a frontend; a missing one is not an error.
func (d *Datapath) DeleteService(ctx context.Context, k ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lb.deleteService(d.objs, bpf.NewServiceKey(k.Frontend, k.Proto))
}

// PruneServices removes every frontend not in keep.
func (d *Datapath) PruneServices(ctx context.Context, keep []ServiceKey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	want := map[bpf.ServiceKey]bool{}
	for _, k := range keep {
		want[bpf.NewServiceKey(k.Frontend, k.Proto)] = true
	}
	for key := range d.lb.services {
		if !want[key] {
			if err := d.lb.deleteService(d.objs, key); err != nil {
				return err
			}
		}
	}
	return nil
}
