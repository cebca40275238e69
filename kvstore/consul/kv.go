package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// Get returns the key or an error wrapping kvstore.ErrNotFound.
func (c *Client) Get(ctx context.Context, key string) (kvstore.KeyValue, error) {
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return kvstore.KeyValue{}, fmt.Errorf("get %s: %w", key, err)
	}
	p, err := c.get(ctx, key)
	if err != nil {
		return kvstore.KeyValue{}, err
	}
	if p == nil {
		return kvstore.KeyValue{}, fmt.Errorf("get %s: %w", key, kvstore.ErrNotFound)
	}
	return toKeyValue(p), nil
}

func (c *Client) get(ctx context.Context, key string) (*api.KVPair, error) {
	if err := c.begin(ctx); err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	p, _, err := c.api.KV().Get(key, query(ctx))
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", key, c.endpoint, err)
	}
	return p, nil
}

// List returns every key under prefix, sorted by key.
func (c *Client) List(ctx context.Context, prefix string) ([]kvstore.KeyValue, error) {
	if err := kvstore.CheckKey(c.cfg.Prefix, prefix); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	if err := c.begin(ctx); err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	ps, _, err := c.api.KV().List(prefix, query(ctx))
	if err != nil {
		return nil, fmt.Errorf("list %s from %s: %w", prefix, c.endpoint, err)
	}
	return toKeyValues(ps), nil
}

func toKeyValue(p *api.KVPair) kvstore.KeyValue {
	return kvstore.KeyValue{
		Key:      p.Key,
		Value:    p.Value,
		Revision: p.ModifyIndex,
		Leased:   p.Session != "",
	}
}

func toKeyValues(ps api.KVPairs) []kvstore.KeyValue {
	kvs := make([]kvstore.KeyValue, 0, len(ps))
	for _, p := range ps {
		kvs = append(kvs, toKeyValue(p))
	}
	slices.SortFunc(kvs, func(a, b kvstore.KeyValue) int { return strings.Compare(a.Key, b.Key) })
	return kvs
}

// Create writes the key only if it does not exist, else kvstore.ErrExists.
func (c *Client) Create(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	return c.put(ctx, "create", key, value, condition{verb: api.KVCheckNotExists, err: kvstore.ErrExists}, opts)
}

// Update writes the key unconditionally.
func (c *Client) Update(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	return c.put(ctx, "update", key, value, condition{}, opts)
}

// CompareAndSwap writes only while the key's revision is rev (0: the key
// must not exist), else kvstore.ErrConflict.
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64, opts ...kvstore.WriteOption) (uint64, error) {
	return c.put(ctx, "compare-and-swap", key, value, revCondition(rev), opts)
}

func revCondition(rev uint64) condition {
	if rev == 0 {
		return condition{verb: api.KVCheckNotExists, err: kvstore.ErrConflict}
	}
	return condition{verb: api.KVCheckIndex, index: rev, err: kvstore.ErrConflict}
}

// UpdateIfDifferent writes only when the stored value or lease binding
// differs from the one asked for, and reports whether it wrote. It reads,
// then writes on the condition that the key is still as read, and repeats
// when another writer came in between.
func (c *Client) UpdateIfDifferent(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (bool, error) {
	if err := kvstore.Check(c.cfg.Prefix, key, value, c.cfg.MaxValueSize); err != nil {
		return false, err
	}
	o := kvstore.ApplyOptions(opts)
	for {
		p, err := c.get(ctx, key)
		if err != nil {
			return false, err
		}
		var rev uint64
		if p != nil {
			if bytes.Equal(p.Value, value) && c.sameBinding(p.Session, o.Leased) {
				return false, nil
			}
			rev = p.ModifyIndex
		}
		_, err = c.put(ctx, "update", key, value, revCondition(rev), opts)
		if errors.Is(err, kvstore.ErrConflict) {
			continue // changed since we read it: compare again
		}
		return err == nil, err
	}
}

// sameBinding reports whether a key held by session (empty: none) is bound
// the way a write with leased would bind it.
func (c *Client) sameBinding(session string, leased bool) bool {
	if !leased {
		return session == ""
	}
	cur := c.current()
	return cur != nil && cur.id == session
}

// Delete removes the key; a missing key is not an error.
func (c *Client) Delete(ctx context.Context, key string, opts ...kvstore.WriteOption) error {
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	o := kvstore.ApplyOptions(opts)
	ops, err := c.guard(o)
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: key}})
	if _, err := c.txn(ctx, "delete", key, ops, condition{}); err != nil {
		return err
	}
	return nil
}

// DeleteIfValue removes the key only while it holds value, else
// kvstore.ErrConflict, or kvstore.ErrNotFound when it is already gone.
func (c *Client) DeleteIfValue(ctx context.Context, key string, value []byte) error {
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	for {
		p, err := c.get(ctx, key)
		if err != nil {
			return err
		}
		if p == nil {
			return fmt.Errorf("delete %s if value matches: %w", key, kvstore.ErrNotFound)
		}
		if !bytes.Equal(p.Value, value) {
			return fmt.Errorf("delete %s if value matches: %w: it holds another value", key, kvstore.ErrConflict)
		}
		if err := c.begin(ctx); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		ok, _, err := c.api.KV().DeleteCAS(&api.KVPair{Key: key, ModifyIndex: p.ModifyIndex}, write(ctx))
		if err != nil {
			return fmt.Errorf("delete %s at %s: %w", key, c.endpoint, err)
		}
		if ok {
			return nil
		}
		// Rewritten since we read it: compare the new value.
	}
}
