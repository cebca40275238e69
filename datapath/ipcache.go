package datapath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"

	"github.com/weftnet/weft/datapath/bpf"
)

// IPCacheEntry is what the datapath knows about a prefix: its identity
// and, for pods on other nodes in tunnel mode, the node to tunnel to.
type IPCacheEntry struct {
	Identity uint32
	// TunnelEndpoint is the underlay address of the node hosting the
	// prefix; invalid (zero) for local, world and CIDR entries.
	TunnelEndpoint netip.Addr
}

// UpsertIPCache maps prefix to entry. Host addresses are /32 (/128)
// prefixes; CIDR policy and world use shorter ones.
func (d *Datapath) UpsertIPCache(ctx context.Context, prefix netip.Prefix, e IPCacheEntry) error {
	if !prefix.IsValid() {
		return fmt.Errorf("invalid ipcache prefix %v", prefix)
	}
	v := bpf.IPCacheValue{Identity: e.Identity}
	if e.TunnelEndpoint.IsValid() {
		v.TunnelFamily, v.TunnelEndpoint = bpf.Addr16(e.TunnelEndpoint)
	}
	if err := d.objs.WeftIpcache.Put(bpf.NewIPCacheKey(prefix), v); err != nil {
		return fmt.Errorf("write ipcache %s: %w", prefix, err)
	}
	return nil
}

// DeleteIPCache removes prefix; a missing prefix is not an error.
func (d *Datapath) DeleteIPCache(ctx context.Context, prefix netip.Prefix) error {
	err := d.objs.WeftIpcache.Delete(bpf.NewIPCacheKey(prefix))
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("delete ipcache %s: %w", prefix, err)
	}
	return nil
}

// PruneIPCache removes every prefix not in keep.
func (d *Datapath) PruneIPCache(ctx context.Context, keep []netip.Prefix) error {
	want := map[bpf.IPCacheKey]bool{}
	for _, p := range keep {
		want[bpf.NewIPCacheKey(p)] = true
	}
	return pruneMap(d.objs.WeftIpcache, func(k bpf.IPCacheKey) bool { return want[k] })
}

// pruneMap deletes the keys of m that keep rejects. Keys are collected
// first: deleting while iterating restarts hash iteration.
func pruneMap[K comparable](m *ebpf.Map, keep func(K) bool) error {
	var (
		key   K
		stale []K
		val   = make([]byte, m.ValueSize())
	)
	it := m.Iterate()
	for it.Next(&key, &val) {
		if !keep(key) {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("iterate %s: %w", m, err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete from %s: %w", m, err)
		}
	}
	return nil
}
