package consul

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// lockDelay is the session's lock delay. Consul's default of 15s would keep
// a lock held by a lost session unavailable that long, also to this client's
// next session.
const lockDelay = time.Millisecond

// session is one Consul session; lost is closed when it is known to be gone.
type session struct {
	id   string
	lost chan struct{}
}

// sessions tracks the client's current session. There is at most one; after
// it is lost the next leased write or lock creates another.
type sessions struct {
	create sync.Mutex // serialises creating a session

	mu   sync.Mutex
	cur  *session      // nil: none yet, or the last one was lost
	next chan struct{} // lost channel of cur, or of the next session
}

func (s *sessions) init() { s.next = make(chan struct{}) }

// LeaseLost returns a channel closed when the current session is lost (or,
// when there is none, the next one). Leased keys written under it are gone.
func (c *Client) LeaseLost() <-chan struct{} {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	return c.sessions.next
}

// SessionID is the ID of the client's live Consul session, empty when there
// is none (none needed yet, or the last one was lost). For diagnostics and
// tests that end the session from outside.
func (c *Client) SessionID() string {
	if s := c.current(); s != nil {
		return s.id
	}
	return ""
}

// current returns the live session without creating one.
func (c *Client) current() *session {
	c.sessions.mu.Lock()
	defer c.sessions.mu.Unlock()
	return c.sessions.cur
}

// session returns the live session, creating one first if needed.
func (c *Client) session(ctx context.Context) (*session, error) {
	if s := c.current(); s != nil {
		return s, nil
	}
	ss := &c.sessions
	ss.create.Lock()
	defer ss.create.Unlock()
	if s := c.current(); s != nil {
		return s, nil // created while we waited
	}
	id, err := c.createSession(ctx)
	if err != nil {
		return nil, err
	}
	ss.mu.Lock()
	select {
	case <-c.closed:
		ss.mu.Unlock()
		_ = c.destroySession(ctx, id)
		return nil, fmt.Errorf("create session: %w", kvstore.ErrClosed)
	default:
	}
	s := &session{id: id, lost: ss.next}
	ss.cur = s
	ss.mu.Unlock()
	if !c.goBackground(func() { c.renew(s) }) {
		// Closing: Close destroys the session it finds current.
		return nil, fmt.Errorf("create session: %w", kvstore.ErrClosed)
	}
	c.log.Debug("session created", "session", id, "ttl", c.cfg.LeaseTTL)
	return s, nil
}

// createSession asks for a new session. An agent that just started (or
// restarted, losing its state) refuses sessions until it has registered its
// own node; that is retried until ctx ends.
func (c *Client) createSession(ctx context.Context) (string, error) {
	b := kvstore.NewBackoff(backoffMin, backoffMax)
	for {
		if err := c.begin(ctx); err != nil {
			return "", fmt.Errorf("create session: %w", err)
		}
		id, _, err := c.api.Session().CreateNoChecks(&api.SessionEntry{
			Name:      "weft",
			TTL:       c.cfg.LeaseTTL.String(),
			Behavior:  api.SessionBehaviorDelete,
			LockDelay: lockDelay,
		}, write(ctx))
		if err == nil {
			return id, nil
		}
		if !strings.Contains(err.Error(), "Missing node registration") || ctx.Err() != nil {
			return "", fmt.Errorf("create session at %s: %w", c.endpoint, err)
		}
		c.log.Debug("create session: agent node not registered yet; retrying", "err", err)
		b.Wait(ctx)
	}
}

// invalidate forgets s if it is still current and closes its lost channel.
func (c *Client) invalidate(s *session, why string) {
	ss := &c.sessions
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.cur != s {
		return // already handled
	}
	ss.cur = nil
	close(s.lost)
	ss.next = make(chan struct{})
	c.log.Warn("session lost; leased keys and locks are gone", "session", s.id, "reason", why)
}

// renew keeps s alive every TTL/3 until the client closes or the session is
// gone. Transient errors are retried every second; once a whole TTL passed
// without a successful renewal the session is presumed expired.
func (c *Client) renew(s *session) {
	ttl := c.cfg.LeaseTTL
	interval := ttl / 3
	last := time.Now()
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		select {
		case <-c.closed:
			return
		case <-s.lost:
			return
		case <-timer.C:
		}
		entry, err := c.renewOnce(s.id, interval)
		switch {
		case err != nil && time.Since(last) > ttl:
			c.invalidate(s, fmt.Sprintf("no renewal for %v: %v", ttl, err))
			return
		case err != nil:
			c.log.Warn("renew session failed; retrying", "session", s.id, "err", err)
			timer.Reset(min(interval, time.Second))
		case entry == nil:
			c.invalidate(s, "session not found at renewal (expired, destroyed or agent state lost)")
			return
		default:
			last = time.Now()
			timer.Reset(interval)
		}
	}
}

func (c *Client) renewOnce(id string, timeout time.Duration) (*api.SessionEntry, error) {
	ctx, cancel := c.scope(context.Background())
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	defer cancelT()
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	entry, _, err := c.api.Session().Renew(id, write(ctx))
	return entry, err
}

// destroy ends the session at Close: its keys vanish and its locks are
// released. LeaseLost's channel stays closed from now on.
func (s *sessions) destroy(ctx context.Context, c *Client) error {
	s.mu.Lock()
	cur := s.cur
	s.cur = nil
	close(s.next) // cur.lost when there is a session
	s.mu.Unlock()
	if cur == nil {
		return nil
	}
	// An unreachable agent does not hold Close beyond the dial timeout:
	// the session then expires by its TTL.
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	return c.destroySession(ctx, cur.id)
}

func (c *Client) destroySession(ctx context.Context, id string) error {
	if err := c.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("destroy session %s: %w", id, err)
	}
	if _, err := c.api.Session().Destroy(id, write(ctx)); err != nil {
		return fmt.Errorf("destroy session %s at %s: %w", id, c.endpoint, err)
	}
	return nil
}
