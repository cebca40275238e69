package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/weftnet/weft/kvstore"
)

type lock struct {
	c       *Client
	mutex   *concurrency.Mutex
	session *concurrency.Session
	release func() // the process-local mutex
}

// Lock implements kvstore.Locker.
func (c *Client) Lock(ctx context.Context, name string) (kvstore.Lock, error) {
	key := kvstore.LockKey(c.cfg.Prefix, name)
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return nil, err
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	release, err := c.locks.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	for attempt := 0; ; attempt++ {
		s, err := c.lease(ctx)
		if err != nil {
			release()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		m := concurrency.NewMutex(s, key)
		err = m.Lock(ctx)
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			// The server expired the lease before keep-alive noticed:
			// take a fresh one, as a leased write does.
			c.forgetLease()
			continue
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		return &lock{c: c, mutex: m, session: s, release: release}, nil
	}
}

func (l *lock) Unlock(ctx context.Context) error {
	defer l.release()
	select {
	case <-l.session.Done():
		return nil // lost with its lease: nothing to release
	default:
	}
	if err := l.mutex.Unlock(ctx); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("unlock %s: %w", l.mutex.Key(), err)
	}
	return nil
}

func (l *lock) Done() <-chan struct{} { return l.session.Done() }

// guard turns a Guarded option into transaction comparisons.
type guard struct {
	lock *lock
	cmps []clientv3.Cmp
}

func (c *Client) guard(o kvstore.WriteOptions) (guard, error) {
	if o.Lock == nil {
		return guard{}, nil
	}
	l, ok := o.Lock.(*lock)
	if !ok || l.c != c {
		return guard{}, errors.New("guarded write: the lock was not taken through this client")
	}
	return guard{lock: l, cmps: []clientv3.Cmp{l.mutex.IsOwner()}}, nil
}

// lockGone reads the Else branch of a guarded transaction: the owner key
// (named after our lease, so nobody else re-creates it) is missing.
func lockGone(resp *clientv3.TxnResponse, l *lock) bool {
	if len(resp.Responses) == 0 {
		return true
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	return len(kvs) == 0 || clientv3.LeaseID(kvs[0].Lease) != l.session.Lease()
}
