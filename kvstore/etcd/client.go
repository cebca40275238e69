package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/weftnet/weft/kvstore"
)

// Client is an etcd-backed kvstore.Client.
type Client struct {
	cfg   kvstore.Config
	log   *slog.Logger
	cli   *clientv3.Client
	lim   *kvstore.Limiter
	locks kvstore.KeyedMutex

	mu      sync.Mutex
	session *concurrency.Session // nil until a leased write or lock needs it
	lost    chan struct{}        // closed when session is lost
	closed  bool
}

var _ kvstore.Client = (*Client)(nil)

// New connects to etcd and checks, within cfg.DialTimeout, that the cluster
// answers a linearizable read (so has quorum).
func New(ctx context.Context, cfg kvstore.Config, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Backend != kvstore.BackendEtcd {
		return nil, fmt.Errorf("etcd client: config is for backend %q", cfg.Backend)
	}
	tlsCfg, err := cfg.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("etcd client TLS: %w", err)
	}
	where := strings.Join(cfg.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            cfg.Endpoints,
		DialTimeout:          cfg.DialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               zap.NewNop(),
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", where, err)
	}
	c := &Client{
		cfg:  cfg,
		log:  log.With("component", "kvstore", "backend", "etcd"),
		cli:  cli,
		lim:  kvstore.NewLimiter(cfg.RateLimit),
		lost: make(chan struct{}),
	}
	probe, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := cli.Get(probe, kvstore.HeartbeatKey(cfg.Prefix)); err != nil {
		cli.Close()
		return nil, fmt.Errorf("connect to etcd at %s: no answer within %v: %w", where, cfg.DialTimeout, err)
	}
	return c, nil
}

// Prefix implements kvstore.Client.
func (c *Client) Prefix() string { return c.cfg.Prefix }

// Raw exposes the underlying etcd client for etcd-only administration
// (users, roles, compaction) by Weft's own server components.
func (c *Client) Raw() *clientv3.Client { return c.cli }

// begin checks the client is open and waits for the rate limiter.
func (c *Client) begin(ctx context.Context) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return kvstore.ErrClosed
	}
	return c.lim.Wait(ctx)
}

// lease returns the current session, granting a new lease when there is none.
func (c *Client) lease(ctx context.Context) (*concurrency.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, kvstore.ErrClosed
	}
	if c.session != nil {
		select {
		case <-c.session.Done():
			c.dropSessionLocked(c.session)
		default:
			return c.session, nil
		}
	}
	ttl := int64(c.cfg.LeaseTTL / time.Second)
	grant, err := c.cli.Grant(ctx, ttl)
	if err != nil {
		return nil, fmt.Errorf("grant lease: %w", err)
	}
	s, err := concurrency.NewSession(c.cli, concurrency.WithLease(grant.ID), concurrency.WithTTL(int(ttl)))
	if err != nil {
		return nil, fmt.Errorf("keep lease %x alive: %w", grant.ID, err)
	}
	c.session = s
	go c.watchSession(s)
	return s, nil
}

func (c *Client) watchSession(s *concurrency.Session) {
	<-s.Done()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == s && !c.closed {
		c.log.Warn("lease lost; leased keys are gone and a new lease will be granted", "lease", fmt.Sprintf("%x", s.Lease()))
	}
	c.dropSessionLocked(s)
}

// dropSessionLocked forgets s and signals LeaseLost once per session.
func (c *Client) dropSessionLocked(s *concurrency.Session) {
	if c.session != s {
		return
	}
	c.session = nil
	close(c.lost)
	c.lost = make(chan struct{})
}

// LeaseLost implements kvstore.Client.
func (c *Client) LeaseLost() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost
}

// LeaseID is the current lease, 0 if none is granted yet.
func (c *Client) LeaseID() clientv3.LeaseID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.session == nil {
		return 0
	}
	return c.session.Lease()
}

// Close implements kvstore.Client: it revokes the lease, removing every
// leased key and releasing every lock, then closes the connection. An
// unreachable store does not hold it beyond the dial timeout: the lease
// then expires by its TTL.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.session
	c.session = nil
	c.mu.Unlock()
	var errs []error
	if s != nil {
		rctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
		_, err := c.cli.Revoke(rctx, s.Lease())
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("revoke lease %x: %w", s.Lease(), err))
		}
		s.Orphan()
	}
	if err := c.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("close etcd client: %w", err))
	}
	return errors.Join(errs...)
}
