package consul

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// lock is a held distributed lock: its key, acquired by sess.
type lock struct {
	c        *Client
	key      string
	sess     *session
	unlock   func()        // releases the process-local mutex (idempotent)
	unlocked chan struct{} // closed by Unlock
	done     atomic.Bool
	unlockM  sync.Mutex
}

var _ kvstore.Lock = (*lock)(nil)

// Lock blocks until the lock called name is held by this client's session
// or ctx ends. Goroutines of one client first queue on a local mutex per
// key, since Consul would hand the same session the key again.
func (c *Client) Lock(ctx context.Context, name string) (kvstore.Lock, error) {
	key := kvstore.LockKey(c.cfg.Prefix, name)
	if err := kvstore.CheckKey(c.cfg.Prefix, key); err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	unlock, err := c.locks.Lock(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	l, err := c.acquire(ctx, key)
	if err != nil {
		unlock()
		return nil, err
	}
	l.unlock = unlock
	l.unlocked = make(chan struct{})
	// A lost lock frees the local mutex too: Consul will hand the key to
	// the next session anyway, and a holder that never calls Unlock must
	// not block this client's other goroutines for good.
	go func() {
		select {
		case <-l.sess.lost:
			unlock()
		case <-l.unlocked:
		}
	}()
	return l, nil
}

// acquire takes key for the session, waiting while another session holds it.
func (c *Client) acquire(ctx context.Context, key string) (*lock, error) {
	for {
		s, err := c.session(ctx)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", key, err)
		}
		ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Session: s.id}}}
		_, err = c.txn(ctx, "lock", key, ops, condition{})
		switch {
		case err == nil:
			return &lock{c: c, key: key, sess: s}, nil
		case errors.Is(err, errSessionGone):
			c.invalidate(s, "session not found at lock")
		case errors.Is(err, errHeld):
			if err := c.waitFree(ctx, key, s.id); err != nil {
				return nil, err
			}
		default:
			return nil, err
		}
	}
}

// waitFree blocks on the key until no other session holds it.
func (c *Client) waitFree(ctx context.Context, key, own string) error {
	ctx, cancel := c.scope(ctx)
	defer cancel()
	var index uint64
	b := kvstore.NewBackoff(backoffMin, backoffMax)
	for {
		if err := c.begin(ctx); err != nil {
			return fmt.Errorf("wait for lock %s: %w", key, err)
		}
		q := &api.QueryOptions{WaitIndex: index, WaitTime: time.Minute}
		p, meta, err := c.blocking.KV().Get(key, q.WithContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for lock %s: %w", key, c.ctxErr(ctx))
			}
			c.log.Debug("wait for lock", "key", key, "err", err)
			b.Wait(ctx)
			index = 0
			continue
		}
		b.Reset()
		if p == nil || p.Session == "" || p.Session == own {
			return nil
		}
		index = nextIndex(index, meta.LastIndex)
	}
}

// Unlock releases the lock by deleting its key while this session still
// holds it. A lost lock is not an error.
func (l *lock) Unlock(ctx context.Context) error {
	l.unlockM.Lock()
	defer l.unlockM.Unlock()
	if l.done.Load() {
		return nil
	}
	select {
	case <-l.sess.lost:
	default:
		ops := api.TxnOps{
			{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: l.key, Session: l.sess.id}},
			{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: l.key}},
		}
		_, err := l.c.txn(ctx, "unlock", l.key, ops, condition{})
		if err != nil && !errors.Is(err, kvstore.ErrLockLost) {
			return err // still held: the caller may retry
		}
	}
	l.done.Store(true)
	close(l.unlocked)
	l.unlock()
	return nil
}

// Done is closed when the session the lock was taken with is lost.
func (l *lock) Done() <-chan struct{} { return l.sess.lost }

func (l *lock) released() bool { return l.done.Load() }
