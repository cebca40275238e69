package consul

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// errSessionGone: a lock operation named a session Consul no longer knows.
var errSessionGone = errors.New("session no longer exists")

// errHeld: a lock operation found the key held by another session.
var errHeld = errors.New("held by another session")

// condition is a check operation a write depends on, and the sentinel
// returned when it fails.
type condition struct {
	verb  api.KVOp // empty: unconditional
	index uint64   // for check-index
	err   error
	also  []api.KVOp // further check verbs that fail with err (Txn)
}

// put writes key in one transaction: [lock check] [condition] delete, then
// set (or lock, to bind the key to the session). The delete makes every
// write a new revision and drops any session binding not asked for. A
// leased write that finds its session gone retries once under a fresh one.
func (c *Client) put(ctx context.Context, what, key string, value []byte, cond condition, opts []kvstore.WriteOption) (uint64, error) {
	if err := kvstore.Check(c.cfg.Prefix, key, value, c.cfg.MaxValueSize); err != nil {
		return 0, fmt.Errorf("%s %s: %w", what, key, err)
	}
	o := kvstore.ApplyOptions(opts)
	for attempt := 0; ; attempt++ {
		ops, err := c.guard(o)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", what, key, err)
		}
		if cond.verb != "" {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: cond.verb, Key: key, Index: cond.index}})
		}
		if cond.verb != api.KVCheckNotExists {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: key}})
		}
		var s *session
		if o.Leased {
			if s, err = c.session(ctx); err != nil {
				return 0, fmt.Errorf("%s %s: %w", what, key, err)
			}
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: value, Session: s.id}})
		} else {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: key, Value: value}})
		}
		res, err := c.txn(ctx, what, key, ops, cond)
		if errors.Is(err, errSessionGone) && attempt == 0 {
			c.invalidate(s, "session not found at write")
			continue
		}
		if err != nil {
			return 0, err
		}
		return lastIndex(res), nil
	}
}

// lastIndex is the ModifyIndex of the last operation's key: the write.
func lastIndex(res *api.TxnResponse) uint64 {
	if n := len(res.Results); n > 0 && res.Results[n-1].KV != nil {
		return res.Results[n-1].KV.ModifyIndex
	}
	return 0
}

// guard returns the check-session operation that makes a write conditional
// on holding o.Lock, if any.
func (c *Client) guard(o kvstore.WriteOptions) (api.TxnOps, error) {
	if o.Lock == nil {
		return nil, nil
	}
	l, ok := o.Lock.(*lock)
	if !ok || l.c != c {
		return nil, fmt.Errorf("guarded by a lock of type %T not taken by this client", o.Lock)
	}
	if l.released() {
		return nil, fmt.Errorf("guarded by lock %s: %w: already unlocked", l.key, kvstore.ErrLockLost)
	}
	return api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVCheckSession, Key: l.key, Session: l.sess.id}}}, nil
}

// txn runs ops atomically. When Consul rolls it back, the failing operation
// says why: a session check is a lost lock, a condition has its sentinel,
// a lock verb found its session gone or the key held.
func (c *Client) txn(ctx context.Context, what, key string, ops api.TxnOps, cond condition) (*api.TxnResponse, error) {
	if err := c.begin(ctx); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, key, err)
	}
	ok, res, _, err := c.api.Txn().Txn(ops, query(ctx))
	if err != nil && strings.Contains(err.Error(), "too large") {
		// Values travel base64-encoded in a transaction, so the agent's
		// limit on a request (txn_max_req_len, 512 KiB by default) is
		// reached by values of about 380 KiB.
		return nil, fmt.Errorf("%s %s at %s: %w for one Consul transaction; raise limits.txn_max_req_len on the agents to 4/3 of MaxValueSize plus 1 KiB: %v",
			what, key, c.endpoint, kvstore.ErrValueTooLarge, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s at %s: %w", what, key, c.endpoint, err)
	}
	if ok {
		return res, nil
	}
	var reasons []string
	for _, e := range res.Errors {
		if e.OpIndex < 0 || e.OpIndex >= len(ops) || ops[e.OpIndex].KV == nil {
			if !slices.Contains(reasons, e.What) {
				reasons = append(reasons, e.What)
			}
			continue
		}
		op := ops[e.OpIndex].KV
		switch {
		case op.Verb == api.KVCheckSession:
			return nil, fmt.Errorf("%s %s: %w: lock %s is no longer held by this client", what, key, kvstore.ErrLockLost, op.Key)
		case cond.verb != "" && (op.Verb == cond.verb || slices.Contains(cond.also, op.Verb)):
			return nil, fmt.Errorf("%s %s: %w", what, key, cond.err)
		case op.Verb == api.KVLock && strings.Contains(e.What, "invalid session"):
			return nil, fmt.Errorf("%s %s: %w", what, key, errSessionGone)
		case op.Verb == api.KVLock && strings.Contains(e.What, "already held"):
			return nil, fmt.Errorf("%s %s: %w", what, key, errHeld)
		}
		if !slices.Contains(reasons, e.What) {
			reasons = append(reasons, e.What)
		}
	}
	return nil, fmt.Errorf("%s %s at %s: transaction rolled back: %s", what, key, c.endpoint, strings.Join(reasons, "; "))
}
