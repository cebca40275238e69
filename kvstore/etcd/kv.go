package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/kvstore"
)

// listPage bounds one range request while listing a large prefix.
const listPage = 5000

func toKV(kv *mvccpb.KeyValue) kvstore.KeyValue {
	return kvstore.KeyValue{Key: string(kv.Key), Value: kv.Value, Revision: uint64(kv.ModRevision), Leased: kv.Lease != 0}
}

// Get implements kvstore.Reader.
func (c *Client) Get(ctx context.Context, key string) (kvstore.KeyValue, error) {
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return kvstore.KeyValue{}, err
	}
	if err := c.begin(ctx); err != nil {
		return kvstore.KeyValue{}, err
	}
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return kvstore.KeyValue{}, fmt.Errorf("get %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return kvstore.KeyValue{}, fmt.Errorf("get %s: %w", key, kvstore.ErrNotFound)
	}
	return toKV(resp.Kvs[0]), nil
}

// List implements kvstore.Reader.
func (c *Client) List(ctx context.Context, prefix string) ([]kvstore.KeyValue, error) {
	var out []kvstore.KeyValue
	_, err := c.list(ctx, prefix, func(kv *mvccpb.KeyValue) { out = append(out, toKV(kv)) })
	return out, err
}

// list pages through prefix at one revision, which it returns.
func (c *Client) list(ctx context.Context, prefix string, each func(*mvccpb.KeyValue)) (int64, error) {
	if err := kvstore.CheckKey(c.cfg.Prefix, prefix); err != nil {
		return 0, err
	}
	end := clientv3.GetPrefixRangeEnd(prefix)
	from, rev := prefix, int64(0)
	for {
		if err := c.begin(ctx); err != nil {
			return 0, err
		}
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.cli.Get(ctx, from, opts...)
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			each(kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// write is one conditional transaction: cond must hold (plus the lock guard,
// if any) for then to run. On failure it tells a lost lock from a failed
// condition, which it reports as failErr.
func (c *Client) write(ctx context.Context, key string, value []byte, o kvstore.WriteOptions, cond []clientv3.Cmp, then func(leaseOpts []clientv3.OpOption) clientv3.Op, failErr error) (int64, error) {
	if err := kvstore.Check(c.cfg.Prefix, key, value, c.cfg.MaxValueSize); err != nil {
		return 0, err
	}
	if err := c.begin(ctx); err != nil {
		return 0, err
	}
	guard, err := c.guard(o)
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	for attempt := 0; ; attempt++ {
		var leaseOpts []clientv3.OpOption
		if o.Leased {
			s, err := c.lease(ctx)
			if err != nil {
				return 0, fmt.Errorf("write %s: %w", key, err)
			}
			leaseOpts = append(leaseOpts, clientv3.WithLease(s.Lease()))
		}
		txn := c.cli.Txn(ctx).If(append(cond, guard.cmps...)...).Then(then(leaseOpts))
		if guard.lock != nil {
			txn = txn.Else(clientv3.OpGet(guard.lock.mutex.Key()))
		}
		resp, err := txn.Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			c.forgetLease()
			continue // the lease expired under us: take a new one once
		}
		if err != nil {
			return 0, fmt.Errorf("write %s: %w", key, err)
		}
		if !resp.Succeeded {
			if guard.lock != nil && lockGone(resp, guard.lock) {
				return 0, fmt.Errorf("write %s: %w", key, kvstore.ErrLockLost)
			}
			return 0, fmt.Errorf("write %s: %w", key, failErr)
		}
		return resp.Header.Revision, nil
	}
}

func (c *Client) forgetLease() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session != nil {
		c.dropSessionLocked(c.session)
	}
}

func put(key string, value []byte) func([]clientv3.OpOption) clientv3.Op {
	return func(leaseOpts []clientv3.OpOption) clientv3.Op {
		return clientv3.OpPut(key, string(value), leaseOpts...)
	}
}

// Create implements kvstore.Writer.
func (c *Client) Create(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	cond := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	rev, err := c.write(ctx, key, value, kvstore.ApplyOptions(opts), cond, put(key, value), kvstore.ErrExists)
	return uint64(rev), err
}

// Update implements kvstore.Writer.
func (c *Client) Update(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (uint64, error) {
	rev, err := c.write(ctx, key, value, kvstore.ApplyOptions(opts), nil, put(key, value), kvstore.ErrConflict)
	return uint64(rev), err
}

// CompareAndSwap implements kvstore.Writer.
func (c *Client) CompareAndSwap(ctx context.Context, key string, value []byte, rev uint64, opts ...kvstore.WriteOption) (uint64, error) {
	cond := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(key), "=", int64(rev))}
	if rev == 0 {
		cond = []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)}
	}
	newRev, err := c.write(ctx, key, value, kvstore.ApplyOptions(opts), cond, put(key, value), kvstore.ErrConflict)
	return uint64(newRev), err
}

// UpdateIfDifferent implements kvstore.Writer. The stored key counts as
// different when its value differs or when it is not bound the way the
// caller asks (leased under this client's current lease, or not leased).
func (c *Client) UpdateIfDifferent(ctx context.Context, key string, value []byte, opts ...kvstore.WriteOption) (bool, error) {
	o := kvstore.ApplyOptions(opts)
	for {
		cur, err := c.Get(ctx, key)
		var rev uint64
		switch {
		case errors.Is(err, kvstore.ErrNotFound):
		case err != nil:
			return false, err
		default:
			if bytes.Equal(cur.Value, value) && c.sameBinding(ctx, key, o.Leased) {
				return false, nil
			}
			rev = cur.Revision
		}
		_, err = c.CompareAndSwap(ctx, key, value, rev, opts...)
		if errors.Is(err, kvstore.ErrConflict) {
			continue // changed under us: look again
		}
		return err == nil, err
	}
}

// sameBinding reports whether key's lease is the one a write with leased
// would give it.
func (c *Client) sameBinding(ctx context.Context, key string, leased bool) bool {
	resp, err := c.cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		return false
	}
	lease := clientv3.LeaseID(resp.Kvs[0].Lease)
	if !leased {
		return lease == 0
	}
	return lease != 0 && lease == c.LeaseID()
}

// Delete implements kvstore.Writer.
func (c *Client) Delete(ctx context.Context, key string, opts ...kvstore.WriteOption) error {
	del := func([]clientv3.OpOption) clientv3.Op { return clientv3.OpDelete(key) }
	o := kvstore.ApplyOptions(opts)
	o.Leased = false
	_, err := c.write(ctx, key, nil, o, nil, del, kvstore.ErrConflict)
	return err
}

// DeleteIfValue implements kvstore.Writer.
func (c *Client) DeleteIfValue(ctx context.Context, key string, value []byte) error {
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return err
	}
	if err := c.begin(ctx); err != nil {
		return err
	}
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.Value(key), "=", string(value))).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return fmt.Errorf("delete %s: %w", key, kvstore.ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", key, kvstore.ErrConflict)
	}
	return nil
}
