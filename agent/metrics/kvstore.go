package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// InstrumentStore returns c with its reads, writes and locks timed into
// weft_kvstore_operation_duration_seconds and failures counted into
// weft_kvstore_operation_errors_total. A missing key, an existing key and
// a lost compare are answers, not errors. Watches are not timed.
func (a *Agent) InstrumentStore(c kvstore.Client) kvstore.Client {
	return &store{Client: c, m: a}
}

type store struct {
	kvstore.Client
	m *Agent
}

func (s *store) observe(op string, start time.Time, err error) {
	if errors.Is(err, kvstore.ErrNotFound) || errors.Is(err, kvstore.ErrExists) || errors.Is(err, kvstore.ErrConflict) {
		err = nil
	}
	s.m.ObserveStoreOp(op, time.Since(start), err)
}

func (s *store) Get(ctx context.Context, key string) (kvstore.KeyValue, error) {
	start := time.Now()
	kv, err := s.Client.Get(ctx, key)
	s.observe("get", start, err)
	return kv, err
}

func (s *store) List(ctx context.Context, prefix string) ([]kvstore.KeyValue, error) {
	start := time.Now()
	kvs, err := s.Client.List(ctx, prefix)
	s.observe("list", start, err)
	return kvs, err
}

func (s *store) Create(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	start := time.Now()
	rev, err := s.Client.Create(ctx, key, value, opts...)
	s.observe("create", start, err)
	return rev, err
}

func (s *store) Update(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	start := time.Now()
	rev, err := s.Client.Update(ctx, key, value, opts...)
	s.observe("update", start, err)
	return rev, err
}

func (s *store) UpdateIfDifferent(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (bool, error) {
	start := time.Now()
	wrote, err := s.Client.UpdateIfDifferent(ctx, key, value, opts...)
	s.observe("update_if_different", start, err)
	return wrote, err
}

func (s *store) CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64, opts ...kvstore.WriteOption) (uint64, error) {
	start := time.Now()
	next, err := s.Client.CompareAndSwap(ctx, key, value, rev, opts...)
	s.observe("compare_and_swap", start, err)
	return next, err
}

func (s *store) Delete(ctx context.Context, key string, opts ...kvstore.WriteOption) error {
	start := time.Now()
	err := s.Client.Delete(ctx, key, opts...)
	s.observe("delete", start, err)
	return err
}

func (s *store) DeleteIfValue(ctx context.Context, key string, value []byte) error {
	start := time.Now()
	err := s.Client.DeleteIfValue(ctx, key, value)
	s.observe("delete_if_value", start, err)
	return err
}

func (s *store) Lock(ctx context.Context, key string) (kvstore.Lock, error) {
	start := time.Now()
	l, err := s.Client.Lock(ctx, key)
	s.observe("lock", start, err)
	return l, err
}
