package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Store edits service records of one cluster.
type Store struct {
	client  kvstore.Client
	keys    records.Keys
	cluster string
	log     *slog.Logger
}

// NewStore edits cluster's services through client.
func NewStore(client kvstore.Client, cluster string, log *slog.Logger) (*Store, error) {
	if err := records.ValidateClusterName(cluster); err != nil {
		return nil, fmt.Errorf("service store: %w", err)
	}
	return &Store{client: client, keys: records.NewKeys(client.Prefix()), cluster: cluster,
		log: log.With("component", "services", "cluster", cluster)}, nil
}

// Create writes a new service; an existing one fails with kvstore.ErrExists.
func (s *Store) Create(ctx context.Context, svc records.Service) error {
	svc.Cluster = s.cluster
	key := s.keys.Service(s.cluster, svc.Namespace, svc.Name)
	val, err := records.Encode(key, &svc)
	if err != nil {
		return fmt.Errorf("create service: %w", err)
	}
	if _, err := s.client.Create(ctx, key, val); err != nil {
		return fmt.Errorf("create service %s: %w", key, err)
	}
	return nil
}

// Get reads a service; a missing one fails with kvstore.ErrNotFound.
func (s *Store) Get(ctx context.Context, ns, name string) (records.Service, uint64, error) {
	key := s.keys.Service(s.cluster, ns, name)
	kv, err := s.client.Get(ctx, key)
	if err != nil {
		return records.Service{}, 0, fmt.Errorf("get service %s: %w", key, err)
	}
	svc, err := s.keys.DecodeService(key, kv.Value)
	return svc, kv.Revision, err
}

// Update applies change to the stored service with compare-and-swap,
// retrying when someone else wrote it meanwhile. Backends computed by the
// Controller are kept when change leaves a selector in place.
func (s *Store) Update(ctx context.Context, ns, name string, change func(*records.Service) error) (records.Service, error) {
	key := s.keys.Service(s.cluster, ns, name)
	for {
		cur, rev, err := s.Get(ctx, ns, name)
		if err != nil {
			return records.Service{}, err
		}
		next := cur
		if err := change(&next); err != nil {
			return records.Service{}, fmt.Errorf("update service %s: %w", key, err)
		}
		next.Cluster, next.Namespace, next.Name = s.cluster, ns, name
		val, err := records.Encode(key, &next)
		if err != nil {
			return records.Service{}, fmt.Errorf("update service: %w", err)
		}
		_, err = s.client.CompareAndSwap(ctx, key, val, rev)
		if errors.Is(err, kvstore.ErrConflict) {
			continue
		}
		if err != nil {
			return records.Service{}, fmt.Errorf("update service %s: %w", key, err)
		}
		return next, nil
	}
}

// Delete removes a service; a missing one is not an error.
func (s *Store) Delete(ctx context.Context, ns, name string) error {
	key := s.keys.Service(s.cluster, ns, name)
	if err := s.client.Delete(ctx, key); err != nil {
		return fmt.Errorf("delete service %s: %w", key, err)
	}
	return nil
}

// List returns the cluster's services; malformed records are logged and skipped.
func (s *Store) List(ctx context.Context) ([]records.Service, error) {
	prefix := s.keys.ServicesPrefix(s.cluster)
	kvs, err := s.client.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list services %s: %w", prefix, err)
	}
	out := make([]records.Service, 0, len(kvs))
	for _, kv := range kvs {
		svc, err := s.keys.DecodeService(kv.Key, kv.Value)
		if err != nil {
			s.log.Warn("skip malformed service", "err", err)
			continue
		}
		out = append(out, svc)
	}
	return out, nil
}
