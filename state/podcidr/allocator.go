package podcidr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// ErrExhausted is returned when every CIDR of the pool is taken.
var ErrExhausted = errors.New("pod CIDR pool exhausted")

// maxScan bounds how many candidate subnets one Acquire tries per family
// (IPv6 pools can hold billions).
const maxScan = 1 << 16

// Allocator takes pod CIDRs for nodes of one cluster.
type Allocator struct {
	client kvstore.Client
	keys   records.Keys
	cfg    Config
	log    *slog.Logger
}

// New returns an allocator for cfg.Cluster's pool.
func New(client kvstore.Client, cfg Config, log *slog.Logger) (*Allocator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Allocator{client: client, keys: records.NewKeys(client.Prefix()), cfg: cfg,
		log: log.With("component", "podcidr", "cluster", cfg.Cluster)}, nil
}

// Allocations lists the CIDRs taken in the cluster, by CIDR.
func (a *Allocator) Allocations(ctx context.Context) (map[netip.Prefix]records.PodCIDR, error) {
	prefix := a.keys.IPAMPrefix(a.cfg.Cluster)
	kvs, err := a.client.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list pod CIDRs %s: %w", prefix, err)
	}
	out := make(map[netip.Prefix]records.PodCIDR, len(kvs))
	for _, kv := range kvs {
		p, err := a.keys.DecodePodCIDR(kv.Key, kv.Value)
		if err != nil {
			a.log.Warn("ignore malformed pod CIDR allocation", "err", err)
			continue
		}
		out[p.CIDR] = p
	}
	return out, nil
}

// Acquire returns node's pod CIDRs, one per address family of the pool: the
// ones it already holds (after a restart), else free ones taken by
// compare-and-swap.
func (a *Allocator) Acquire(ctx context.Context, node string) ([]netip.Prefix, error) {
	if err := records.ValidateNodeName(node); err != nil {
		return nil, fmt.Errorf("acquire pod CIDR: %w", err)
	}
	taken, err := a.Allocations(ctx)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, v6 := range []bool{false, true} {
		pool := a.family(v6)
		if len(pool) == 0 {
			continue
		}
		cidr, err := a.acquireFamily(ctx, node, pool, taken)
		if err != nil {
			return nil, err
		}
		out = append(out, cidr)
	}
	return out, nil
}

func (a *Allocator) family(v6 bool) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range a.cfg.Pool {
		if p.Addr().Is6() == v6 {
			out = append(out, p)
		}
	}
	return out
}

func (a *Allocator) acquireFamily(ctx context.Context, node string, pool []netip.Prefix, taken map[netip.Prefix]records.PodCIDR) (netip.Prefix, error) {
	for cidr, alloc := range taken {
		if alloc.Node == node && inPool(pool, cidr, a.cfg.maskFor(cidr)) {
			return cidr, nil
		}
	}
	scanned := 0
	for _, p := range pool {
		mask := a.cfg.maskFor(p)
		for i := uint64(0); i < count(p, mask) && scanned < maxScan; i++ {
			scanned++
			cidr := subnet(p, mask, i)
			if _, ok := taken[cidr]; ok {
				continue
			}
			key := a.keys.IPAM(a.cfg.Cluster, cidr)
			val, err := records.Encode(key, &records.PodCIDR{CIDR: cidr, Node: node})
			if err != nil {
				return netip.Prefix{}, err
			}
			_, err = a.client.CompareAndSwap(ctx, key, val, 0)
			switch {
			case err == nil:
				a.log.Info("took pod CIDR", "node", node, "cidr", cidr)
				return cidr, nil
			case errors.Is(err, kvstore.ErrConflict), errors.Is(err, kvstore.ErrExists):
				continue // another node won this one
			default:
				return netip.Prefix{}, fmt.Errorf("take pod CIDR %s: %w", key, err)
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("acquire pod CIDR for node %s: %w: pool %v with /%d (IPv4) or /%d (IPv6) subnets has no free CIDR", node, ErrExhausted, pool, a.cfg.MaskSize, a.cfg.MaskSizeV6)
}

func inPool(pool []netip.Prefix, cidr netip.Prefix, mask int) bool {
	if cidr.Bits() != mask {
		return false
	}
	for _, p := range pool {
		if p.Contains(cidr.Addr()) {
			return true
		}
	}
	return false
}

// Free releases every CIDR node holds (the node was deleted).
func (a *Allocator) Free(ctx context.Context, node string) ([]netip.Prefix, error) {
	prefix := a.keys.IPAMPrefix(a.cfg.Cluster)
	kvs, err := a.client.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list pod CIDRs %s: %w", prefix, err)
	}
	var freed []netip.Prefix
	for _, kv := range kvs {
		p, err := a.keys.DecodePodCIDR(kv.Key, kv.Value)
		if err != nil || p.Node != node {
			continue
		}
		if err := a.client.DeleteIfValue(ctx, kv.Key, kv.Value); err != nil && !errors.Is(err, kvstore.ErrNotFound) {
			return freed, fmt.Errorf("free pod CIDR %s: %w", kv.Key, err)
		}
		freed = append(freed, p.CIDR)
	}
	return freed, nil
}
