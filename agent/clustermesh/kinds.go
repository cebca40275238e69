package clustermesh

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
)

// kindHandler applies one kind of a remote's records.
type kindHandler struct {
	upsert func(ctx context.Context, key string, value []byte) error // error: rejected
	remove func(ctx context.Context, key string)
	// prune removes what the first complete listing did not confirm
	// (state kept from an earlier session or restored after a restart).
	prune func(ctx context.Context, seen map[string]struct{})
}

// watch follows prefix of the remote. The first listing of a session
// prunes what it did not confirm; later re-lists (after a reconnect of the
// same client) emit deletes themselves.
func (r *remoteCluster) watch(ctx context.Context, client kvstore.Client, prefix, kind string, h kindHandler) error {
	seen := map[string]struct{}{}
	start := time.Now()
	for ev := range client.ListAndWatch(ctx, prefix) {
		switch ev.Type {
		case kvstore.EventUpsert:
			if seen != nil {
				seen[ev.Key] = struct{}{}
			}
			if err := h.upsert(ctx, ev.Key, ev.Value); err != nil {
				r.reject(ctx, ev.Key, err, h)
			}
		case kvstore.EventDelete:
			h.remove(ctx, ev.Key)
		case kvstore.EventListDone:
			if seen != nil {
				h.prune(ctx, seen)
				r.mu.Lock()
				r.listed[kind] = true
				if r.syncedLocked() {
					r.lastSync = time.Now()
				}
				r.mu.Unlock()
				if kind == records.KindNodes {
					r.persist()
				}
				r.log.Info("remote records listed", "kind", kind, "records", len(seen), "took", time.Since(start).Round(time.Millisecond))
				seen = nil
				r.m.servicesChanged() // global services may wait for this listing
			}
		}
	}
	return nil
}

// Reasons a remote's record is rejected, as status and metrics count them.
const (
	RejectMalformed       = "malformed"        // does not decode, or its key and value disagree
	RejectForeignPrefix   = "foreign-prefix"   // a key or record of another cluster
	RejectClusterID       = "cluster-id"       // claims another cluster id
	RejectIdentityRange   = "identity-range"   // an identity outside the remote's range
	RejectPodCIDR         = "pod-cidr"         // outside the remote's pool, or inside this cluster's
	RejectAddressConflict = "address-conflict" // an underlay address of a node of this cluster
	RejectGlobalAddress   = "global-address"   // a global address that is not the remote's for the pod address
)

// rejection is why a record was refused: a reason (Reject*) and the detail.
type rejection struct {
	reason string
	err    error
}

func (e *rejection) Error() string { return e.err.Error() }
func (e *rejection) Unwrap() error { return e.err }

func rejectf(reason, format string, args ...any) error {
	return &rejection{reason: reason, err: fmt.Errorf(format, args...)}
}

// rejectReason is the reason of a refused record; an error without one is
// a record that did not decode (or, when its value names another cluster
// than its key, a record of another cluster).
func rejectReason(err error) string {
	var rej *rejection
	switch {
	case errors.As(err, &rej):
		return rej.reason
	case errors.Is(err, records.ErrOtherCluster):
		return RejectForeignPrefix
	}
	return RejectMalformed
}

// reject counts (by reason) and logs a record the remote may not announce,
// and drops what an earlier version of it brought.
func (r *remoteCluster) reject(ctx context.Context, key string, err error, h kindHandler) {
	reason := rejectReason(err)
	r.mu.Lock()
	r.rejected[reason]++
	n := r.rejected[reason]
	r.mu.Unlock()
	if n <= 10 || n%1000 == 0 {
		r.log.Warn("rejected a record of the remote cluster", "key", key, "reason", reason, "err", err, "rejected", n)
	}
	h.remove(ctx, key)
}

func (r *remoteCluster) nodeKind() kindHandler {
	return kindHandler{
		upsert: func(ctx context.Context, key string, value []byte) error {
			n, err := r.keys.DecodeNode(key, value)
			if err != nil {
				return err
			}
			cc := r.config()
			if n.ClusterID != cc.ID {
				return rejectf(RejectClusterID, "node %s claims cluster id %d, the remote is %d", n.Name, n.ClusterID, cc.ID)
			}
			for _, p := range n.PodCIDRs {
				if !inPool(cc.PodCIDRs, p) {
					return rejectf(RejectPodCIDR, "node %s: pod CIDR %v is outside the remote's pool %v", n.Name, p, cc.PodCIDRs)
				}
			}
			for _, ip := range n.Underlay {
				if owner := r.m.localNodeWith(ip); owner != "" {
					return rejectf(RejectAddressConflict, "node %s: underlay address %v is that of local node %s", n.Name, ip, owner)
				}
			}
			n = globalNode(cc, n)
			r.mu.Lock()
			r.nodes[key] = n
			r.mu.Unlock()
			r.m.nodes.Upsert(ctx, key, n)
			r.persistListed()
			return nil
		},
		remove: func(ctx context.Context, key string) {
			r.mu.Lock()
			_, had := r.nodes[key]
			delete(r.nodes, key)
			r.mu.Unlock()
			if had {
				r.m.nodes.Remove(ctx, key)
				r.persistListed()
			}
		},
		prune: func(ctx context.Context, seen map[string]struct{}) {
			r.mu.Lock()
			var stale []string
			for key := range r.nodes {
				if _, ok := seen[key]; !ok {
					stale = append(stale, key)
				}
			}
			for _, key := range stale {
				delete(r.nodes, key)
			}
			r.mu.Unlock()
			for _, key := range stale {
				r.m.nodes.Remove(ctx, key)
			}
		},
	}
}

// ipKind follows the remote's ipcache entries. Of a remote with global
// addressing, an entry is known (r.ips, the BPF ipcache) by its global
// address, so that pods of clusters sharing a pod CIDR never collide here;
// of other remotes by its address.
func (r *remoteCluster) ipKind() kindHandler {
	keyIP := func(key string) (netip.Addr, bool) {
		cluster, ip, err := r.keys.ParseIPCacheKey(key)
		return ip, err == nil && cluster == r.name
	}
	drop := func(addr netip.Addr) {
		r.mu.Lock()
		_, had := r.ips[addr]
		delete(r.ips, addr)
		r.mu.Unlock()
		if had {
			r.m.ipcache.OnChange(ipcache.Change{Type: ipcache.Delete, Entry: records.IPCacheEntry{IP: addr}})
			r.m.servicesChanged()
		}
	}
	return kindHandler{
		upsert: func(ctx context.Context, key string, value []byte) error {
			e, err := r.keys.DecodeIPCacheEntry(key, value)
			if err != nil {
				return err
			}
			if ip, ok := keyIP(key); !ok || ip != e.IP {
				return rejectf(RejectForeignPrefix, "ipcache key %s is not under %s's prefix", key, r.name)
			}
			cc := r.config()
			if !clustermesh.AcceptIdentity(cc.ID, e.Identity) {
				return rejectf(RejectIdentityRange, "identity %d of %s is outside the range of %s (id %d)", e.Identity, e.IP, r.name, cc.ID)
			}
			if err := checkGlobalIP(cc, e); err != nil {
				return err
			}
			installed := e
			if e.GlobalIP.IsValid() {
				installed.IP = e.GlobalIP
			} else if inAny(r.m.cfg.Cluster.PodCIDRs, e.IP) {
				return rejectf(RejectPodCIDR, "address %s is in this cluster's pod CIDR pool %v", e.IP, r.m.cfg.Cluster.PodCIDRs)
			}
			r.mu.Lock()
			r.ips[installed.IP] = e
			r.mu.Unlock()
			r.m.ipcache.OnChange(ipcache.Change{Type: ipcache.Upsert, Entry: installed})
			r.m.servicesChanged() // remote pods are global services' backends
			return nil
		},
		remove: func(ctx context.Context, key string) {
			if ip, ok := keyIP(key); ok {
				drop(installedAddr(r.config(), ip))
			}
		},
		prune: func(ctx context.Context, seen map[string]struct{}) {
			cc := r.config()
			r.mu.Lock()
			var stale []netip.Addr
			for addr := range r.ips {
				if _, ok := seen[r.keys.IPCache(r.name, podAddr(cc, addr))]; !ok {
					stale = append(stale, addr)
				}
			}
			r.mu.Unlock()
			for _, addr := range stale {
				drop(addr)
			}
		},
	}
}

// globalNode is remote node n as this cluster knows it: of a remote with
// global addressing, its pod CIDRs and health address are the global ones
// (its pod CIDRs may be this cluster's own), so routes go to the global
// ranges; pod CIDRs without an aligned global range (IPv6, pools laid out
// unaligned) are left out: the pods' own ipcache entries still carry
// their node.
func globalNode(cc records.ClusterConfig, n records.Node) records.Node {
	if !cc.GlobalCIDR.IsValid() {
		return n
	}
	out := n
	out.PodCIDRs = nil
	for _, p := range n.PodCIDRs {
		if g, ok := records.GlobalPrefix(cc.GlobalCIDR, cc.PodCIDRs, p); ok {
			out.PodCIDRs = append(out.PodCIDRs, g)
		}
	}
	out.HealthIP = netip.Addr{}
	if g, ok := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, n.HealthIP); ok {
		out.HealthIP = g
	}
	return out
}

// checkGlobalIP refuses an entry whose global address is not the one its
// cluster's global CIDR gives its address (records.GlobalAddr): outside
// the global CIDR, of another pod, or announced by a cluster without
// global addressing, or missing although the address has one. An entry
// outside a global cluster's IPv4 pool has none and is checked like any
// other.
func checkGlobalIP(cc records.ClusterConfig, e records.IPCacheEntry) error {
	if !e.GlobalIP.IsValid() {
		if want, ok := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, e.IP); ok {
			return rejectf(RejectGlobalAddress, "%s of %s has no global address; %s gives it %v (an agent started before global addressing was turned on: restart it)", e.IP, cc.Name, cc.Name, want)
		}
		return nil
	}
	switch want, ok := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, e.IP); {
	case !cc.GlobalCIDR.IsValid():
		return rejectf(RejectGlobalAddress, "global address %s of %s: cluster %s has no global addressing", e.GlobalIP, e.IP, cc.Name)
	case !cc.GlobalCIDR.Contains(e.GlobalIP):
		return rejectf(RejectGlobalAddress, "global address %s of %s is outside the global CIDR %v of %s", e.GlobalIP, e.IP, cc.GlobalCIDR, cc.Name)
	case !ok:
		return rejectf(RejectGlobalAddress, "global address %s of %s: %s is outside the IPv4 pod CIDR pool of %s, which has global addresses", e.GlobalIP, e.IP, e.IP, cc.Name)
	case want != e.GlobalIP:
		return rejectf(RejectGlobalAddress, "global address %s of %s: %s gives that address %v", e.GlobalIP, e.IP, cc.Name, want)
	}
	return nil
}

// installedAddr is what a remote entry for pod address ip is known by
// here: its global address when the remote has global addressing.
func installedAddr(cc records.ClusterConfig, ip netip.Addr) netip.Addr {
	if g, ok := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, ip); ok {
		return g
	}
	return ip
}

// podAddr is the inverse of installedAddr.
func podAddr(cc records.ClusterConfig, addr netip.Addr) netip.Addr {
	if ip, ok := records.PodAddr(cc.GlobalCIDR, cc.PodCIDRs, addr); ok {
		return ip
	}
	return addr
}

// localNodeWith names the node of this cluster with underlay address ip.
func (m *Mesh) localNodeWith(ip netip.Addr) string {
	if ip == m.cfg.NodeIP {
		return m.cfg.Node
	}
	return m.nodes.LocalNodeWith(ip)
}

func inPool(pool []netip.Prefix, p netip.Prefix) bool {
	for _, q := range pool {
		if q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func inAny(pool []netip.Prefix, ip netip.Addr) bool {
	for _, q := range pool {
		if q.Contains(ip) {
			return true
		}
	}
	return false
}

func (r *remoteCluster) config() records.ClusterConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg
}
