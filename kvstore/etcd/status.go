package etcd

import (
	"context"
	"fmt"
	"time"

	"github.com/weftnet/weft/kvstore"
)

// Status implements kvstore.Client: a linearizable read of the heartbeat key
// succeeds only while the cluster has quorum.
func (c *Client) Status(ctx context.Context) kvstore.Status {
	st := kvstore.Status{Backend: kvstore.BackendEtcd, Endpoints: c.cfg.Endpoints}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	resp, err := c.cli.Get(ctx, kvstore.HeartbeatKey(c.cfg.Prefix))
	if err != nil {
		st.Err = fmt.Errorf("read heartbeat: %w", err)
		return st
	}
	st.Quorum = true
	if len(resp.Kvs) > 0 {
		st.Heartbeat, st.Err = kvstore.ParseHeartbeat(resp.Kvs[0].Value)
	}
	return st
}

// WriteHeartbeat stores the current time in the heartbeat key.
func (c *Client) WriteHeartbeat(ctx context.Context) error {
	_, err := c.Update(ctx, kvstore.HeartbeatKey(c.cfg.Prefix), kvstore.FormatHeartbeat(time.Now()))
	return err
}
