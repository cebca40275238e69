package datapath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/datapath/bpf"
)

// setupMasquerade writes the masquerading configuration: on or off, the
// node's address, and the ranges never masqueraded (replacing what the
// map held).
func (d *Datapath) setupMasquerade() error {
	mc := bpf.MasqConfig{}
	if d.cfg.Masquerade {
		if !d.cfg.NodeIP.Is4() {
			return fmt.Errorf("masquerade: the node address %v is not IPv4", d.cfg.NodeIP)
		}
		mc.Enabled, mc.NodeIp = 1, be32(d.cfg.NodeIP)
	}
	keep := map[bpf.NomasqKey]bool{}
	for _, p := range d.cfg.NonMasquerade {
		if !p.Addr().Is4() {
			return fmt.Errorf("non-masquerade range %v: only IPv4 ranges are accepted", p)
		}
		p = p.Masked()
		k := bpf.NomasqKey{Prefixlen: uint32(p.Bits()), Addr: be32(p.Addr())}
		keep[k] = true
		if err := d.objs.WeftNomasq.Put(k, uint8(1)); err != nil {
			return fmt.Errorf("write non-masquerade range %v: %w", p, err)
		}
	}
	var k bpf.NomasqKey
	var v uint8
	var stale []bpf.NomasqKey
	it := d.objs.WeftNomasq.Iterate()
	for it.Next(&k, &v) {
		if !keep[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read non-masquerade ranges: %w", err)
	}
	for _, k := range stale {
		if err := d.objs.WeftNomasq.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete a stale non-masquerade range: %w", err)
		}
	}
	if err := d.objs.WeftMasqConfig.Put(uint32(0), mc); err != nil {
		return fmt.Errorf("write masquerade config: %w", err)
	}
	return nil
}

// Masquerading reports whether pods' traffic for outside the cluster is
// masqueraded, and the ranges that never are.
func (d *Datapath) Masquerading() (bool, []netip.Prefix) {
	return d.cfg.Masquerade, slices.Clone(d.cfg.NonMasquerade)
}

// be32 is an IPv4 address as the BPF programs compare it: its bytes in
// network order in memory.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}
