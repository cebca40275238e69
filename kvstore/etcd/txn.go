package etcd

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/kvstore"
)

var _ kvstore.Transactor = (*Client)(nil)

// ComparesPrefixes implements kvstore.Transactor: etcd compares ranges.
func (c *Client) ComparesPrefixes() bool { return true }

// Txn implements kvstore.Transactor with one etcd transaction. A leased put
// that finds the lease expired server-side takes a new lease once.
func (c *Client) Txn(ctx context.Context, cmps []kvstore.Compare, ops []kvstore.Op) (uint64, error) {
	if err := kvstore.CheckTxn(c.cfg.Prefix, c.cfg.MaxValueSize, cmps, ops); err != nil {
		return 0, err
	}
	what := ops[0].Key
	if err := c.begin(ctx); err != nil {
		return 0, fmt.Errorf("transaction on %s: %w", what, err)
	}
	ifs := make([]clientv3.Cmp, 0, len(cmps))
	for _, cmp := range cmps {
		ifs = append(ifs, etcdCompare(cmp))
	}
	for attempt := 0; ; attempt++ {
		thens := make([]clientv3.Op, 0, len(ops))
		for _, op := range ops {
			if op.Delete {
				thens = append(thens, clientv3.OpDelete(op.Key))
				continue
			}
			var opts []clientv3.OpOption
			if op.Leased {
				s, err := c.lease(ctx)
				if err != nil {
					return 0, fmt.Errorf("transaction on %s: %w", what, err)
				}
				opts = append(opts, clientv3.WithLease(s.Lease()))
			}
			thens = append(thens, clientv3.OpPut(op.Key, string(op.Value), opts...))
		}
		resp, err := c.cli.Txn(ctx).If(ifs...).Then(thens...).Commit()
		if errors.Is(err, rpctypes.ErrLeaseNotFound) && attempt == 0 {
			c.forgetLease()
			continue // the lease expired under us: take a new one once
		}
		if err != nil {
			return 0, fmt.Errorf("transaction on %s: %w", what, err)
		}
		if !resp.Succeeded {
			return 0, fmt.Errorf("transaction on %s: %w", what, kvstore.ErrConflict)
		}
		return uint64(resp.Header.Revision), nil
	}
}

// etcdCompare turns one kvstore.Compare into an etcd compare. A range
// compare holds for an empty range when the zero key satisfies it, which
// is what "nothing under the prefix" needs.
func etcdCompare(cmp kvstore.Compare) clientv3.Cmp {
	if cmp.Prefix {
		return clientv3.Compare(clientv3.ModRevision(cmp.Key), "<", int64(cmp.Revision)+1).WithPrefix()
	}
	if cmp.Revision == 0 {
		return clientv3.Compare(clientv3.CreateRevision(cmp.Key), "=", 0)
	}
	return clientv3.Compare(clientv3.ModRevision(cmp.Key), "=", int64(cmp.Revision))
}
