package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weftnet/weft/kvstore"
)

// Client is a kvstore.Client on Consul. It is safe for concurrent use.
type Client struct {
	cfg kvstore.Config
	log *slog.Logger
	api *api.Client
	// blocking serves blocking queries (watches, lock waits) over
	// connections that are never reused: Go's transport silently replays an
	// idempotent request whose reused connection broke, so after an agent
	// restart the new agent would get the old, higher index and hold the
	// query for its whole wait time.
	blocking *api.Client
	http     *http.Client
	endpoint string
	limiter  *kvstore.Limiter

	sessions sessions
	locks    kvstore.KeyedMutex

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
	mu        sync.Mutex    // guards wg.Add against Close's wg.Wait
	wg        sync.WaitGroup
	isClosed  bool
}

var _ kvstore.Client = (*Client)(nil)

// New connects to the first endpoint of cfg whose agent knows a leader.
// Unreachable endpoints fail within cfg.DialTimeout.
func New(ctx context.Context, cfg kvstore.Config, log *slog.Logger) (*Client, error) {
	if cfg.Backend == "" {
		cfg.Backend = kvstore.BackendConsul
	}
	if cfg.Backend != kvstore.BackendConsul {
		return nil, fmt.Errorf("open consul client: backend %q given; this package serves %q", cfg.Backend, kvstore.BackendConsul)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("open consul client: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc, err := httpClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("open consul client: %w", err)
	}
	c := &Client{
		cfg:     cfg,
		http:    hc,
		log:     log.With("component", "kvstore", "backend", "consul"),
		limiter: kvstore.NewLimiter(cfg.RateLimit),
		closed:  make(chan struct{}),
	}
	c.sessions.init()
	var errs []error
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep) // valid: checked by Validate
		if err != nil {
			errs = append(errs, fmt.Errorf("connect to consul at %s: %w", ep, err))
			continue
		}
		// Scheme and address set explicitly, so that CONSUL_HTTP_* variables
		// cannot redirect the client; only an empty token falls back to
		// CONSUL_HTTP_TOKEN.
		ac, err := api.NewClient(&api.Config{Address: u.Host, Scheme: u.Scheme, HttpClient: hc, Token: cfg.Token})
		if err != nil {
			errs = append(errs, fmt.Errorf("connect to consul at %s: %w", ep, err))
			continue
		}
		bc, err := api.NewClient(&api.Config{Address: u.Host, Scheme: u.Scheme, HttpClient: noReuse(hc), Token: cfg.Token})
		if err != nil {
			errs = append(errs, fmt.Errorf("connect to consul at %s: %w", ep, err))
			continue
		}
		c.api, c.blocking, c.endpoint = ac, bc, ep
		if err := c.checkLeader(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connect to consul at %s: %w", ep, err))
			continue
		}
		c.log = c.log.With("endpoint", ep)
		return c, nil
	}
	hc.CloseIdleConnections()
	return nil, errors.Join(errs...)
}

// httpClient dials within the dial timeout and speaks TLS when configured.
// It sets no overall timeout: blocking queries last minutes, and every
// request carries its caller's context instead.
func httpClient(cfg kvstore.Config) (*http.Client, error) {
	tlsCfg, err := cfg.TLS.Load()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // loopback agents and in-cluster servers: never via a proxy
	tr.DialContext = (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = cfg.DialTimeout
	tr.MaxIdleConnsPerHost = 32
	if tlsCfg != nil {
		tr.TLSClientConfig = tlsCfg
	}
	return &http.Client{Transport: tr}, nil
}

// noReuse is hc with keep-alives off, for blocking queries.
func noReuse(hc *http.Client) *http.Client {
	tr := hc.Transport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &http.Client{Transport: tr}
}

// checkLeader asks the agent for the raft leader within the dial timeout.
func (c *Client) checkLeader(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	if err := c.begin(ctx); err != nil {
		return err
	}
	leader, err := c.api.Status().LeaderWithQueryOptions(query(ctx))
	if err != nil {
		return fmt.Errorf("ask for leader: %w", err)
	}
	if leader == "" {
		return errors.New("no cluster leader elected")
	}
	return nil
}

// Prefix is the prefix every key must start with.
func (c *Client) Prefix() string { return c.cfg.Prefix }

// begin admits one request: refused once closed, else rate limited.
func (c *Client) begin(ctx context.Context) error {
	select {
	case <-c.closed:
		return kvstore.ErrClosed
	default:
	}
	return c.limiter.Wait(ctx)
}

// goBackground runs f on its own goroutine until Close; false once closed.
func (c *Client) goBackground(f func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// scope derives a context that also ends when the client closes.
func (c *Client) scope(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// ctxErr explains why a scoped ctx ended: the client closed, or the
// caller's ctx ended.
func (c *Client) ctxErr(ctx context.Context) error {
	select {
	case <-c.closed:
		return kvstore.ErrClosed
	default:
		return ctx.Err()
	}
}

// Close stops session renewal and background watches, then destroys the
// session: leased keys vanish and locks are released. Later calls on the
// client fail with kvstore.ErrClosed; closing twice is not an error.
func (c *Client) Close(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.isClosed = true
		close(c.closed)
		c.mu.Unlock()
		c.wg.Wait()
		err = c.sessions.destroy(ctx, c)
		c.http.CloseIdleConnections()
	})
	return err
}

func query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func write(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}
