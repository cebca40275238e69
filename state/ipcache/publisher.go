package ipcache

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/weftnet/weft/state/records"
)

// Owner is what a Publisher writes through: the agent's sync store
// (syncstore.Store), which keeps owned keys lease-bound.
type Owner interface {
	Upsert(key string, value []byte)
	Delete(key string)
	MarkSynced(key string, value []byte)
}

// Publisher publishes and withdraws the entries of one agent.
type Publisher struct {
	owner   Owner
	keys    records.Keys
	cluster string
	global  netip.Prefix // zero: global addressing off
	pool    []netip.Prefix
}

// NewPublisher publishes cluster's entries under prefix through owner.
func NewPublisher(owner Owner, prefix, cluster string) (*Publisher, error) {
	if err := records.ValidateClusterName(cluster); err != nil {
		return nil, fmt.Errorf("ipcache publisher: %w", err)
	}
	return &Publisher{owner: owner, keys: records.NewKeys(prefix), cluster: cluster}, nil
}

// SetGlobal turns global addressing on: every entry published afterwards
// whose address is in pool carries its global address in global
// (records.GlobalAddr). Call it before the first Publish.
func (p *Publisher) SetGlobal(global netip.Prefix, pool []netip.Prefix) {
	p.global, p.pool = global, pool
}

// Publish makes e this agent's entry for e.IP, with its global address
// when the cluster has global addressing.
func (p *Publisher) Publish(e records.IPCacheEntry) error {
	e.GlobalIP = netip.Addr{}
	if g, ok := records.GlobalAddr(p.global, p.pool, e.IP); ok {
		e.GlobalIP = g
	}
	key := p.keys.IPCache(p.cluster, e.IP)
	val, err := records.Encode(key, &e)
	if err != nil {
		return fmt.Errorf("publish ipcache entry: %w", err)
	}
	p.owner.Upsert(key, val)
	return nil
}

// Withdraw removes this agent's entry for ip.
func (p *Publisher) Withdraw(ip netip.Addr) {
	p.owner.Delete(p.keys.IPCache(p.cluster, ip))
}

// MarkSynced announces, once everything published so far is in the store,
// that the full list has been published (synced/<cluster>/ip).
func (p *Publisher) MarkSynced(now time.Time) error {
	key := p.keys.Synced(p.cluster, records.KindIPCache)
	val, err := records.Encode(key, &records.Synced{Time: now})
	if err != nil {
		return err
	}
	p.owner.MarkSynced(key, val)
	return nil
}
