package services

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// ErrNotFound: no such service.
var ErrNotFound = errors.New("service not found")

// ErrExists: create found the service already defined.
var ErrExists = errors.New("service already exists")

// Mode says whether Apply may create, update or both.
type Mode int

const (
	CreateOrUpdate Mode = iota
	CreateOnly
	UpdateOnly
)

// Allocator writes service records, allocating ClusterIPs from the service
// CIDR and NodePorts from 30000–32767. Every write happens under one store
// lock per cluster (services/v1/lock/<cluster>): the list of taken
// addresses and ports and the write are guarded by the same lock
// (kvstore.Guarded), so two agents never hand out the same address or port.
type Allocator struct {
	client  kvstore.Client
	keys    records.Keys
	cluster string
	cidr    netip.Prefix
	log     *slog.Logger
}

// NewAllocator allocates in cluster from cidr (an IPv4 prefix).
func NewAllocator(client kvstore.Client, cluster string, cidr netip.Prefix, log *slog.Logger) (*Allocator, error) {
	if !cidr.IsValid() || !cidr.Addr().Is4() || cidr != cidr.Masked() || cidr.Bits() > 30 {
		return nil, fmt.Errorf("service CIDR %v: a masked IPv4 prefix of at most /30 is accepted, e.g. 10.96.0.0/16", cidr)
	}
	if err := records.ValidateClusterName(cluster); err != nil {
		return nil, fmt.Errorf("service allocator: %w", err)
	}
	return &Allocator{client: client, keys: records.NewKeys(client.Prefix()), cluster: cluster, cidr: cidr,
		log: log.With("component", "services", "cluster", cluster)}, nil
}

// CIDR is the service CIDR ClusterIPs come from.
func (a *Allocator) CIDR() netip.Prefix { return a.cidr }

func (a *Allocator) lockName() string { return a.keys.Prefix() + "services/v1/lock/" + a.cluster }

// Apply validates specs, allocates what they leave open and writes them,
// all under the cluster's lock. Every spec is checked (including clashes
// with each other and with the store) before the first write.
func (a *Allocator) Apply(ctx context.Context, mode Mode, specs ...Spec) ([]records.Service, error) {
	specs = slices.Clone(specs)
	for i := range specs {
		specs[i].Ports = slices.Clone(specs[i].Ports) // allocation fills them in
		if err := specs[i].Validate(); err != nil {
			return nil, err
		}
	}
	lock, err := a.client.Lock(ctx, a.lockName())
	if err != nil {
		return nil, fmt.Errorf("lock services of cluster %s: %w", a.cluster, err)
	}
	defer func() {
		if err := lock.Unlock(context.WithoutCancel(ctx)); err != nil {
			a.log.Warn("unlock services lock", "err", err)
		}
	}()
	existing, stored, err := a.list(ctx)
	if err != nil {
		return nil, err
	}
	used := newUsage(a.cidr)
	for key, r := range existing {
		used.add(key, r)
	}
	out := make([]records.Service, 0, len(specs))
	for _, s := range specs {
		key := a.keys.Service(a.cluster, s.Namespace, s.Name)
		old, had := existing[key]
		switch {
		case had && mode == CreateOnly:
			return nil, fmt.Errorf("create service %s/%s: %w: use update or apply", s.Namespace, s.Name, ErrExists)
		case !had && mode == UpdateOnly:
			return nil, fmt.Errorf("update service %s/%s: %w", s.Namespace, s.Name, ErrNotFound)
		}
		used.remove(key)
		if err := used.allocate(&s, old, had); err != nil {
			return nil, fmt.Errorf("service %s/%s: %w", s.Namespace, s.Name, err)
		}
		r := s.Record(a.cluster)
		if had && old.Source != "" && old.Source != r.Source {
			return nil, fmt.Errorf("service %s/%s: %w: it is owned by %q, not by the CLI", s.Namespace, s.Name, ErrInvalid, old.Source)
		}
		used.add(key, r)
		out = append(out, r)
	}
	values := make([][]byte, len(out))
	for i := range out {
		if values[i], err = records.Encode(a.keys.Service(a.cluster, out[i].Namespace, out[i].Name), &out[i]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if err := a.write(ctx, lock, out, values, stored); err != nil {
		return nil, err
	}
	return out, nil
}

// writeConcurrency bounds the writes of one apply in flight at once: the
// store commits concurrent transactions together.
const writeConcurrency = 32

// write stores every changed record, each with one request: a
// compare-and-swap against the listed revision in the transaction that
// checks the lock. A store error part-way leaves the earlier writes (each
// a complete, valid record).
func (a *Allocator) write(ctx context.Context, lock kvstore.Lock, out []records.Service, values [][]byte, stored map[string]kvstore.KeyValue) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(writeConcurrency)
	for i, r := range out {
		key := a.keys.Service(a.cluster, r.Namespace, r.Name)
		old := stored[key]
		if bytes.Equal(old.Value, values[i]) {
			continue
		}
		g.Go(func() error {
			if _, err := a.client.CompareAndSwap(gctx, key, values[i], old.Revision, kvstore.Guarded(lock)); err != nil {
				return fmt.Errorf("write service %s/%s: %w", r.Namespace, r.Name, err)
			}
			a.log.Debug("service written", "service", r.Namespace+"/"+r.Name, "type", r.Type, "frontends", r.Frontends)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(out) > 0 {
		a.log.Info("services written", "count", len(out), "first", out[0].Namespace+"/"+out[0].Name)
	}
	return nil
}

// Delete removes a service; false when there was none.
func (a *Allocator) Delete(ctx context.Context, ns, name string) (bool, error) {
	key := a.keys.Service(a.cluster, ns, name)
	if _, err := a.client.Get(ctx, key); errors.Is(err, kvstore.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("read service %s/%s: %w", ns, name, err)
	}
	if err := a.client.Delete(ctx, key); err != nil {
		return false, fmt.Errorf("delete service %s/%s: %w", ns, name, err)
	}
	a.log.Info("service deleted", "service", ns+"/"+name)
	return true, nil
}

// Get reads one service.
func (a *Allocator) Get(ctx context.Context, ns, name string) (records.Service, error) {
	key := a.keys.Service(a.cluster, ns, name)
	kv, err := a.client.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		return records.Service{}, fmt.Errorf("service %s/%s in cluster %s: %w", ns, name, a.cluster, ErrNotFound)
	}
	if err != nil {
		return records.Service{}, fmt.Errorf("read service %s/%s: %w", ns, name, err)
	}
	return a.keys.DecodeService(key, kv.Value)
}

// list reads the cluster's service records and their stored keys. Malformed
// records are skipped (they hold no allocation the datapath would honour)
// but kept as stored keys, so an apply overwrites them.
func (a *Allocator) list(ctx context.Context) (map[string]records.Service, map[string]kvstore.KeyValue, error) {
	kvs, err := a.client.List(ctx, a.keys.ServicesPrefix(a.cluster))
	if err != nil {
		return nil, nil, fmt.Errorf("list services of cluster %s: %w", a.cluster, err)
	}
	out := make(map[string]records.Service, len(kvs))
	stored := make(map[string]kvstore.KeyValue, len(kvs))
	for _, kv := range kvs {
		stored[kv.Key] = kv
		r, err := a.keys.DecodeService(kv.Key, kv.Value)
		if err != nil {
			a.log.Warn("skip malformed service record", "key", kv.Key, "err", err)
			continue
		}
		out[kv.Key] = r
	}
	return out, stored, nil
}
