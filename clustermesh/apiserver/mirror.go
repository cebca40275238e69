package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// maxTxnOps stays below etcd's default --max-txn-ops (128).
const maxTxnOps = 100

// mirrorKind copies one prefix of the cluster store into the served store.
type mirrorKind struct {
	kind   string // records.Kind*
	src    string // prefix in the cluster store
	dst    string // the same prefix in the served store
	accept func(key string, value []byte) error
}

// mirror copies this cluster's records from the cluster store into the
// served store and writes the synced canaries after the first full copy.
type mirror struct {
	src     kvstore.Client
	dst     *clientv3.Client
	cluster string
	kinds   []mirrorKind
	dstKeys records.Keys
	m       *metrics
	log     *slog.Logger
}

// errIdentityRange marks a record of an identity this cluster may not announce.
var errIdentityRange = errors.New("identity outside the cluster's range")

func newMirror(src kvstore.Client, dst *clientv3.Client, dstPrefix string, cc records.ClusterConfig, m *metrics, log *slog.Logger) *mirror {
	sk, dk := records.NewKeys(src.Prefix()), records.NewKeys(dstPrefix)
	c := cc.Name
	return &mirror{src: src, dst: dst, cluster: c, dstKeys: dk, m: m, log: log.With("component", "mirror"), kinds: []mirrorKind{
		{records.KindNodes, sk.NodesPrefix(c), dk.NodesPrefix(c), func(k string, v []byte) error {
			_, err := sk.DecodeNode(k, v)
			return err
		}},
		{records.KindIPCache, sk.IPCachePrefix(c), dk.IPCachePrefix(c), func(k string, v []byte) error {
			e, err := sk.DecodeIPCacheEntry(k, v)
			if err == nil && !clustermesh.AcceptIdentity(cc.ID, e.Identity) {
				err = fmt.Errorf("ipcache entry %s: %w: identity %d is outside cluster %s's range", k, errIdentityRange, e.Identity, c)
			}
			return err
		}},
		{records.KindIdentities, sk.IdentitiesPrefix(), dk.IdentitiesPrefix(), func(k string, v []byte) error {
			id, err := sk.DecodeIdentity(k, v)
			if err == nil && !clustermesh.AcceptIdentity(cc.ID, id.ID) {
				err = fmt.Errorf("%w: identity %d is outside cluster %s's range", errIdentityRange, id.ID, c)
			}
			return err
		}},
		{records.KindServices, sk.ServicesPrefix(c), dk.ServicesPrefix(c), func(k string, v []byte) error {
			_, err := sk.DecodeService(k, v)
			return err
		}},
	}}
}

// opBatch is the writes of one transaction, at most one per key: etcd
// refuses a transaction naming a key twice, so a later write of a key
// replaces the earlier one in place.
type opBatch struct {
	ops []clientv3.Op
	at  map[string]int // index in ops, by key
}

func (b *opBatch) add(key string, op clientv3.Op) {
	if i, ok := b.at[key]; ok {
		b.ops[i] = op
		return
	}
	if b.at == nil {
		b.at = map[string]int{}
	}
	b.at[key] = len(b.ops)
	b.ops = append(b.ops, op)
}

func (b *opBatch) reset() {
	b.ops = b.ops[:0]
	clear(b.at)
}

func (m *mirror) run(ctx context.Context, k mirrorKind) error {
	log := m.log.With("kind", k.kind)
	present := map[string]struct{}{} // keys copied from the source
	var batch opBatch
	flush := func() {
		ops := batch.ops
		if len(ops) == 0 {
			return
		}
		for ctx.Err() == nil {
			if _, err := m.dst.Txn(ctx).Then(ops...).Commit(); err != nil {
				log.Warn("write to served store; retrying", "ops", len(ops), "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
				continue
			}
			break
		}
		batch.reset()
	}
	synced := false
	events := m.src.ListAndWatch(ctx, k.src)
	for ev := range events {
		// Batch whatever else is already waiting, up to a list-done marker.
		evs := []kvstore.Event{ev}
	gather:
		for ev.Type != kvstore.EventListDone && len(evs) < maxTxnOps {
			select {
			case next, ok := <-events:
				if !ok {
					break gather
				}
				evs = append(evs, next)
				if next.Type == kvstore.EventListDone {
					break gather
				}
			default:
				break gather
			}
		}
		for _, e := range evs {
			if e.Type != kvstore.EventListDone {
				m.apply(k, e, present, &batch, log)
				continue
			}
			flush()
			if !synced {
				synced = m.listed(ctx, k, present, log)
			}
		}
		flush()
		m.m.mirrorKeys.WithLabelValues(k.kind).Set(float64(len(present)))
	}
	return nil
}

func (m *mirror) apply(k mirrorKind, ev kvstore.Event, present map[string]struct{}, ops *opBatch, log *slog.Logger) {
	switch ev.Type {
	case kvstore.EventUpsert:
		dst := k.dst + strings.TrimPrefix(ev.Key, k.src)
		if err := k.accept(ev.Key, ev.Value); err != nil {
			reason := "malformed"
			switch {
			case errors.Is(err, records.ErrOtherCluster):
				reason = "foreign-prefix"
			case errors.Is(err, errIdentityRange):
				reason = "identity-range"
			}
			m.m.mirrorRejected.WithLabelValues(k.kind, reason).Inc()
			log.Warn("not mirroring a record", "key", ev.Key, "reason", reason, "err", err)
			if _, had := present[dst]; had {
				delete(present, dst)
				ops.add(dst, clientv3.OpDelete(dst))
			}
			return
		}
		present[dst] = struct{}{}
		ops.add(dst, clientv3.OpPut(dst, string(ev.Value)))
		m.m.mirrorEvents.WithLabelValues(k.kind, "upsert").Inc()
	case kvstore.EventDelete:
		dst := k.dst + strings.TrimPrefix(ev.Key, k.src)
		delete(present, dst)
		ops.add(dst, clientv3.OpDelete(dst))
		m.m.mirrorEvents.WithLabelValues(k.kind, "delete").Inc()
	}
}

// listed runs after the first complete listing: keys the served store
// kept from an earlier run that the source no longer has are deleted,
// then the kind's canary is written. It reports whether it succeeded.
func (m *mirror) listed(ctx context.Context, k mirrorKind, present map[string]struct{}, log *slog.Logger) bool {
	resp, err := m.dst.Get(ctx, k.dst, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		log.Warn("list served store", "err", err)
		return false
	}
	var ops []clientv3.Op
	for _, kv := range resp.Kvs {
		if _, ok := present[string(kv.Key)]; !ok {
			ops = append(ops, clientv3.OpDelete(string(kv.Key)))
		}
		if len(ops) == maxTxnOps {
			if _, err := m.dst.Txn(ctx).Then(ops...).Commit(); err != nil {
				log.Warn("prune served store", "err", err)
				return false
			}
			ops = ops[:0]
		}
	}
	if len(ops) > 0 {
		if _, err := m.dst.Txn(ctx).Then(ops...).Commit(); err != nil {
			log.Warn("prune served store", "err", err)
			return false
		}
	}
	if err := writeCanary(ctx, m.dst, m.dstKeys, m.cluster, k.kind); err != nil {
		log.Warn("write synced canary", "err", err)
		return false
	}
	log.Info("mirrored", "keys", len(present))
	return true
}

// writeCanary writes synced/<cluster>/<kind> with the current time.
func writeCanary(ctx context.Context, cli *clientv3.Client, keys records.Keys, cluster, kind string) error {
	key := keys.Synced(cluster, kind)
	val, err := records.Encode(key, &records.Synced{Time: time.Now().UTC()})
	if err != nil {
		return err
	}
	_, err = cli.Put(ctx, key, string(val))
	return err
}
