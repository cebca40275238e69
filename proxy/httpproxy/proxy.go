package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
)

// Sink receives the proxy's flow records (flow.Ring).
type Sink interface {
	Write(f *agentapi.Flow)
}

// Config is one proxy listener: the rules of the (endpoint, port,
// direction) whose connections it receives.
type Config struct {
	// Policy decides requests by the peer's identity (the client's for
	// ingress, the destination's for egress), which Peers gives; an
	// address Peers does not know is the world. Without Policy, Matcher
	// decides every request; with neither, every request is denied.
	Policy  *policy.HTTPPolicy
	Peers   flow.EndpointLookup
	Matcher *policy.HTTPMatcher
	// Policies, when set, gives the policy of each request instead of
	// Policy: that of the node's endpoint at the connection's local end
	// (the destination for ingress, the client for egress) for the
	// destination's port; nil: every request is denied. A node's
	// listener serves all its endpoints this way, and a request is
	// decided by the rules in force when it arrives.
	Policies func(endpoint netip.Addr, port uint16) *policy.HTTPPolicy
	// Direction is the direction of the endpoint's traffic the rules
	// apply to (records carry it).
	Direction agentapi.Direction
	// Destination returns where a connection was going. Default: the
	// accepted socket's local address, which a transparent (TPROXY)
	// listener keeps as the original destination.
	Destination func(net.Conn) (netip.AddrPort, error)
	// Dial connects to original destinations; nil: a net.Dialer with a
	// 10 s timeout, in the namespace of the calling thread.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialFrom, when set, replaces Dial: upstream connections are opened
	// on behalf of the client at src (the agent's egress proxy opens
	// them from the client's address, so the destination's datapath sees
	// the client's identity), and each client connection gets its own
	// upstream connections, never shared with another client.
	DialFrom func(ctx context.Context, src netip.Addr, network, addr string) (net.Conn, error)
	// Flows receives a record for every request and response; nil: none.
	Flows Sink
	// Enricher names the pods and identities of the records' ends and the
	// observing node; nil: addresses only.
	Enricher *flow.Enricher
	// Metrics counts requests; nil: not counted.
	Metrics *Metrics
	// MaxHeaderBytes bounds a request's header block (request line
	// included); larger ones are answered 400.
	MaxHeaderBytes int
	// MaxChunkedBodyBytes bounds a chunked request body, which is read
	// whole before forwarding; larger ones are answered 413.
	MaxChunkedBodyBytes int64
	// IdleTimeout closes a connection waiting this long for a request;
	// ReadHeaderTimeout bounds reading one request's header.
	IdleTimeout, ReadHeaderTimeout time.Duration
	Log                            *slog.Logger
}

// Defaults of Config.
const (
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultMaxChunkedBodyBytes = 16 << 20
	DefaultIdleTimeout         = 120 * time.Second
	DefaultReadHeaderTimeout   = 30 * time.Second
)

// DefaultConfig is a proxy that denies everything until given a Matcher.
func DefaultConfig() Config {
	return Config{
		Direction:           agentapi.Direction_INGRESS,
		MaxHeaderBytes:      DefaultMaxHeaderBytes,
		MaxChunkedBodyBytes: DefaultMaxChunkedBodyBytes,
		IdleTimeout:         DefaultIdleTimeout,
		ReadHeaderTimeout:   DefaultReadHeaderTimeout,
	}
}

// Validate checks the limits.
func (c Config) Validate() error {
	if c.MaxHeaderBytes < 1024 || c.MaxHeaderBytes > 1<<20 {
		return fmt.Errorf("max header bytes %d: accepted are 1024 to %d", c.MaxHeaderBytes, 1<<20)
	}
	if c.MaxChunkedBodyBytes < 0 {
		return fmt.Errorf("max chunked body bytes %d: accepted is 0 or more", c.MaxChunkedBodyBytes)
	}
	if c.IdleTimeout <= 0 || c.ReadHeaderTimeout <= 0 {
		return fmt.Errorf("timeouts must be positive: idle %s, read header %s", c.IdleTimeout, c.ReadHeaderTimeout)
	}
	return nil
}

// Proxy serves connections of one listener.
type Proxy struct {
	cfg         Config
	transport   *http.Transport // HTTP/1.1 to original destinations
	h2transport *http.Transport // h2c, for clients that spoke h2c
	log         *slog.Logger

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// New returns a proxy for cfg.
func New(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Destination == nil {
		cfg.Destination = localAddr
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Proxy{
		cfg:         cfg,
		transport:   newTransport(cfg.Dial),
		h2transport: newH2Transport(cfg.Dial),
		log:         log.With("component", "l7-proxy"),
		conns:       map[net.Conn]struct{}{},
	}, nil
}

// newTransport is an HTTP/1.1 transport to original destinations.
func newTransport(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         dial,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
}

func localAddr(c net.Conn) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination of %s: %w", c.RemoteAddr(), err)
	}
	return ap, nil
}

// Serve accepts connections on l until ctx ends, then closes l and every
// connection and returns once they are done.
func (p *Proxy) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	defer p.closeAll()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
			p.ServeConn(ctx, c)
		}()
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.transport.CloseIdleConnections()
	p.h2transport.CloseIdleConnections()
}
