package consul

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

var _ kvstore.Transactor = (*Client)(nil)

// ComparesPrefixes implements kvstore.Transactor: a Consul transaction
// checks single keys only (check-index, check-not-exists).
func (c *Client) ComparesPrefixes() bool { return false }

// Txn implements kvstore.Transactor with one Consul transaction: the
// compares as check-not-exists / check-index, then every put as delete +
// set (or lock, to bind it to the session), so every write is a new
// revision as with the single-key writes. A leased put that finds its
// session gone retries once under a fresh one.
func (c *Client) Txn(ctx context.Context, cmps []kvstore.Compare, ops []kvstore.Op) (uint64, error) {
	if err := kvstore.CheckTxn(c.cfg.Prefix, c.cfg.MaxValueSize, cmps, ops); err != nil {
		return 0, err
	}
	what := ops[0].Key
	var checks api.TxnOps
	for _, cmp := range cmps {
		switch {
		case cmp.Prefix:
			return 0, fmt.Errorf("transaction on %s: compare every key under %s: %w (Consul checks single keys)", what, cmp.Key, kvstore.ErrUnsupported)
		case cmp.Revision == 0:
			checks = append(checks, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: cmp.Key}})
		default:
			checks = append(checks, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: cmp.Key, Index: cmp.Revision}})
		}
	}
	cond := condition{verb: api.KVCheckNotExists, err: kvstore.ErrConflict, also: []api.KVOp{api.KVCheckIndex}}
	for attempt := 0; ; attempt++ {
		txn := append(api.TxnOps{}, checks...)
		var s *session
		for _, op := range ops {
			txn = append(txn, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVDelete, Key: op.Key}})
			switch {
			case op.Delete:
			case op.Leased:
				if s == nil {
					var err error
					if s, err = c.session(ctx); err != nil {
						return 0, fmt.Errorf("transaction on %s: %w", what, err)
					}
				}
				txn = append(txn, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: op.Key, Value: op.Value, Session: s.id}})
			default:
				txn = append(txn, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVSet, Key: op.Key, Value: op.Value}})
			}
		}
		res, err := c.txn(ctx, "transaction on", what, txn, cond)
		if errors.Is(err, errSessionGone) && attempt == 0 && s != nil {
			c.invalidate(s, "session not found at write")
			continue
		}
		if err != nil {
			return 0, err
		}
		return maxIndex(res), nil
	}
}

// maxIndex is the newest ModifyIndex among a transaction's results: the
// index every key it wrote got.
func maxIndex(res *api.TxnResponse) uint64 {
	var idx uint64
	for _, r := range res.Results {
		if r.KV != nil && r.KV.ModifyIndex > idx {
			idx = r.KV.ModifyIndex
		}
	}
	return idx
}
