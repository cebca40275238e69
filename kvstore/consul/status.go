package consul

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// Status reports whether the cluster has a leader and a consistent read
// works (Quorum), and the time stored at the heartbeat key.
func (c *Client) Status(ctx context.Context) kvstore.Status {
	st := kvstore.Status{Backend: kvstore.BackendConsul, Endpoints: c.cfg.Endpoints}
	if err := c.begin(ctx); err != nil {
		st.Err = fmt.Errorf("check status: %w", err)
		return st
	}
	leader, err := c.api.Status().LeaderWithQueryOptions(query(ctx))
	if err != nil {
		st.Err = fmt.Errorf("ask %s for leader: %w", c.endpoint, err)
		return st
	}
	if leader == "" {
		st.Err = fmt.Errorf("ask %s for leader: no cluster leader elected", c.endpoint)
		return st
	}
	key := kvstore.HeartbeatKey(c.cfg.Prefix)
	if err := c.begin(ctx); err != nil {
		st.Err = fmt.Errorf("check status: %w", err)
		return st
	}
	q := &api.QueryOptions{RequireConsistent: true}
	p, _, err := c.api.KV().Get(key, q.WithContext(ctx))
	if err != nil {
		st.Err = fmt.Errorf("read %s consistently from %s: %w", key, c.endpoint, err)
		return st
	}
	st.Quorum = true
	if p != nil {
		t, err := kvstore.ParseHeartbeat(p.Value)
		if err != nil {
			st.Err = fmt.Errorf("parse heartbeat %s: %w", key, err)
			return st
		}
		st.Heartbeat = t
	}
	return st
}

// WriteHeartbeat stores the current time at the heartbeat key; clients read
// its age in Status.
func (c *Client) WriteHeartbeat(ctx context.Context) error {
	now := kvstore.FormatHeartbeat(time.Now())
	if _, err := c.Update(ctx, kvstore.HeartbeatKey(c.cfg.Prefix), now); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	return nil
}
