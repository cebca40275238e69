// Package proxy runs a node's L7 proxy: the listeners the datapath hands
// redirected flows to (docs/l7.md), on 127.0.0.1 of the node,
// transparent: HTTP for ingress and for egress, and DNS (egress, UDP).
// Each request or query is decided by the rules of the node's endpoint
// the flow belongs to, as the policy engine computes them when it
// arrives. The DNS listener keeps the node's FQDN cache (docs/fqdn.md):
// the addresses of allowed answers, which toFQDNs policies select,
// saved across restarts.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/proxy/httpproxy"
	"github.com/weftnet/weft/state/records"
)

// Config is the proxy's listeners.
type Config struct {
	// IngressPort and EgressPort are the HTTP listeners' ports on
	// 127.0.0.1, DNSPort the DNS listener's; 0 turns one off (its
	// redirected flows are dropped with "proxy unavailable").
	IngressPort, EgressPort, DNSPort int
	// FQDNMinTTL is the shortest time an address learnt from a DNS
	// answer stays selected by toFQDNs policies.
	FQDNMinTTL time.Duration
	// FQDNMaxNamesPerEndpoint bounds the names one endpoint's DNS answers
	// keep in the FQDN cache (0: no bound); over it, the endpoint gives up
	// the name it resolved longest ago.
	FQDNMaxNamesPerEndpoint int
	// CacheFile keeps the FQDN cache across restarts ("": not kept).
	CacheFile string
}

// DefaultConfig listens on 15080 (ingress), 15081 (egress) and 15053
// (DNS) and keeps learnt addresses at least an hour, as Cilium does, and
// at most 5000 names per endpoint.
func DefaultConfig() Config {
	return Config{IngressPort: 15080, EgressPort: 15081, DNSPort: 15053, FQDNMinTTL: time.Hour, FQDNMaxNamesPerEndpoint: 5000}
}

// RegisterFlags adds --proxy-ingress-port and --proxy-egress-port.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.IngressPort, "proxy-ingress-port", c.IngressPort,
		"TCP port on 127.0.0.1 of the L7 proxy for ingress HTTP rules (0: off; such flows are then dropped with \"proxy unavailable\")")
	fs.IntVar(&c.EgressPort, "proxy-egress-port", c.EgressPort,
		"TCP port on 127.0.0.1 of the L7 proxy for egress HTTP rules (0: off, as for ingress)")
	fs.IntVar(&c.DNSPort, "proxy-dns-port", c.DNSPort,
		"UDP port on 127.0.0.1 of the DNS proxy for rules.dns (0: off, as for ingress)")
	fs.DurationVar(&c.FQDNMinTTL, "tofqdns-min-ttl", c.FQDNMinTTL,
		"shortest time an address learnt from an allowed DNS answer stays selected by toFQDNs policies (answers with a longer TTL keep theirs)")
	fs.IntVar(&c.FQDNMaxNamesPerEndpoint, "tofqdns-endpoint-max-names", c.FQDNMaxNamesPerEndpoint,
		"most names one endpoint's allowed DNS answers keep in the FQDN cache; over it the endpoint gives up the name it resolved longest ago (0: no bound)")
}

// Validate checks the ports.
func (c Config) Validate() error {
	var errs []error
	for name, p := range map[string]int{"proxy-ingress-port": c.IngressPort, "proxy-egress-port": c.EgressPort, "proxy-dns-port": c.DNSPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("--%s %d: want 0 (off) or 1-65535", name, p))
		}
	}
	if c.IngressPort != 0 && c.IngressPort == c.EgressPort {
		errs = append(errs, fmt.Errorf("--proxy-ingress-port and --proxy-egress-port are both %d: want two ports", c.IngressPort))
	}
	if c.FQDNMinTTL < 0 {
		errs = append(errs, fmt.Errorf("--tofqdns-min-ttl %v: want 0 or more", c.FQDNMinTTL))
	}
	if c.FQDNMaxNamesPerEndpoint < 0 {
		errs = append(errs, fmt.Errorf("--tofqdns-endpoint-max-names %d: want 0 (no bound) or more", c.FQDNMaxNamesPerEndpoint))
	}
	return errors.Join(errs...)
}

// Datapath is where the listeners' ports go (*datapath.Datapath).
type Datapath interface {
	SetProxy(p datapath.ProxyPorts) error
}

// Policies gives the L7 rules of a local endpoint and hears of new FQDN
// addresses (*agent/policy.Engine).
type Policies interface {
	HTTPPolicyOf(ip netip.Addr, dir datapath.Direction, port uint16) *policy.HTTPPolicy
	DNSPolicyOf(ip netip.Addr, port uint16) *policy.DNSPolicy
	FQDNChanged(ctx context.Context) error
	CIDRIdentityOf(ip netip.Addr) (records.ID, bool)
}

// peerLookup names the identity of a peer address as the datapath's
// ipcache does: an endpoint or node the node knows, else the CIDR
// identity of the longest policy prefix holding it (toCIDR, toFQDNs),
// else the world.
type peerLookup struct {
	known    flow.EndpointLookup
	policies Policies
}

func (l peerLookup) LookupIP(ip netip.Addr) (flow.Endpoint, bool) {
	if l.known != nil {
		if ep, ok := l.known.LookupIP(ip); ok && ep.Identity != 0 && ep.Identity != uint32(records.IDWorld) {
			return ep, true
		}
	}
	if id, ok := l.policies.CIDRIdentityOf(ip); ok {
		return flow.Endpoint{Identity: uint32(id)}, true
	}
	return flow.Endpoint{Identity: uint32(records.IDWorld)}, true
}

// Component runs the node's proxy listeners.
type Component struct {
	cfg      Config
	dp       Datapath
	policies Policies
	peers    flow.EndpointLookup
	flows    httpproxy.Sink
	enricher *flow.Enricher
	metrics  *httpproxy.Metrics
	log      *slog.Logger

	cache *fqdn.Cache
	dirty chan struct{} // the cache changed: save it

	mu        sync.Mutex
	listening datapath.ProxyPorts // written to the datapath
}

// listener indexes.
const (
	httpIngress = iota
	httpEgress
	dnsListener
)

// New prepares the component; nothing listens until Run. peers names the
// identities of addresses (the node's ipcache), flows and enricher record
// requests as flows, metrics counts them (nil: not counted).
func New(cfg Config, dp Datapath, policies Policies, peers flow.EndpointLookup, flows httpproxy.Sink,
	enricher *flow.Enricher, metrics *httpproxy.Metrics, log *slog.Logger) (*Component, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Component{cfg: cfg, dp: dp, policies: policies, peers: peerLookup{peers, policies}, flows: flows, enricher: enricher,
		metrics: metrics, log: log.With("component", "l7-proxy"), cache: fqdn.NewCache(cfg.FQDNMinTTL),
		dirty: make(chan struct{}, 1)}
	if cfg.CacheFile != "" {
		cache, err := fqdn.Load(cfg.CacheFile, cfg.FQDNMinTTL, time.Now())
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			// A bad file loses the learnt names (queried again), not the node.
			c.log.Error("FQDN cache not restored; names are learnt again from the next answers", "err", err)
		default:
			c.cache = cache
			c.log.Info("FQDN cache restored", "file", cfg.CacheFile, "addresses", len(cache.Entries()))
		}
	}
	c.cache.LimitNamesPerSource(cfg.FQDNMaxNamesPerEndpoint)
	return c, nil
}

// Cache is the node's FQDN cache; the policy engine selects from it.
func (c *Component) Cache() *fqdn.Cache { return c.cache }

// FQDNLookup gives the addresses of the names a toFQDNs selector matches,
// valid now (agent/policy.Engine.SetFQDN).
func (c *Component) FQDNLookup(m *fqdn.Matcher) []netip.Addr { return c.cache.Lookup(m, time.Now()) }

// Run serves both listeners until ctx ends. A listener that fails (or
// cannot bind) is started again with backoff; meanwhile its port is
// withdrawn from the datapath, so its flows fail closed.
func (c *Component) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for i, dir := range []datapath.Direction{datapath.Ingress, datapath.Egress} {
		port := c.cfg.IngressPort
		if dir == datapath.Egress {
			port = c.cfg.EgressPort
		}
		if port == 0 {
			c.log.Info("L7 proxy listener off", "direction", dirName(dir))
			continue
		}
		g.Go(func() error {
			c.keepServing(ctx, "http "+dirName(dir), uint16(port), func() error { return c.serveHTTP(ctx, i, dir, uint16(port)) })
			return nil
		})
	}
	if c.cfg.DNSPort == 0 {
		c.log.Info("DNS proxy listener off")
	} else {
		g.Go(func() error {
			c.keepServing(ctx, "dns", uint16(c.cfg.DNSPort), func() error { return c.serveDNS(ctx, uint16(c.cfg.DNSPort)) })
			return nil
		})
	}
	g.Go(func() error { c.maintainCache(ctx); return nil })
	return g.Wait()
}

// keepServing runs one listener until ctx ends, restarting it after a failure.
func (c *Component) keepServing(ctx context.Context, name string, port uint16, serve func() error) {
	backoff := kvstore.NewBackoff(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		err := serve()
		if ctx.Err() != nil {
			return
		}
		delay := backoff.Next()
		c.log.Error("L7 proxy listener failed; its redirected flows are dropped until it is back", "listener", name, "port", port, "err", err, "retry-in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

var localhost = netip.AddrFrom4([4]byte{127, 0, 0, 1})

// serveHTTP listens and serves until ctx ends or accepting fails.
func (c *Component) serveHTTP(ctx context.Context, i int, dir datapath.Direction, port uint16) error {
	ln, err := httpproxy.ListenTransparent(ctx, netip.AddrPortFrom(localhost, port))
	if err != nil {
		return err
	}
	pcfg := httpproxy.DefaultConfig()
	pcfg.Direction = agentapi.Direction_INGRESS
	if dir == datapath.Egress {
		pcfg.Direction = agentapi.Direction_EGRESS
	}
	pcfg.Policies = func(ep netip.Addr, port uint16) *policy.HTTPPolicy { return c.policies.HTTPPolicyOf(ep, dir, port) }
	pcfg.Peers, pcfg.Flows, pcfg.Enricher, pcfg.Metrics, pcfg.Log = c.peers, c.flows, c.enricher, c.metrics, c.log
	if dir == datapath.Egress {
		pcfg.DialFrom = dialFromClient
	}
	p, err := httpproxy.New(pcfg)
	if err != nil {
		ln.Close()
		return err
	}
	if err := c.publish(i, port); err != nil {
		ln.Close()
		return err
	}
	c.log.Info("L7 proxy listening", "direction", dirName(dir), "address", ln.Addr())
	err = p.Serve(ctx, &closeNotifier{Listener: ln, onClose: func() { c.withdraw(i) }})
	c.withdraw(i)
	return err
}

// port is listener i's entry of p.
func port(p *datapath.ProxyPorts, i int) *uint16 {
	switch i {
	case httpIngress:
		return &p.Ingress
	case httpEgress:
		return &p.Egress
	}
	return &p.DNS
}

// publish writes the listener's port to the datapath.
func (c *Component) publish(i int, p uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	*port(&c.listening, i) = p
	if err := c.dp.SetProxy(c.listening); err != nil {
		*port(&c.listening, i) = 0
		return err
	}
	return nil
}

// withdraw removes a stopped listener's port from the datapath (flows
// redirected to it are dropped with "proxy unavailable").
func (c *Component) withdraw(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if *port(&c.listening, i) == 0 {
		return
	}
	*port(&c.listening, i) = 0
	if err := c.dp.SetProxy(c.listening); err != nil {
		c.log.Warn("withdraw L7 proxy port", "err", err)
	}
}

// closeNotifier tells when the listener is closed.
type closeNotifier struct {
	net.Listener
	once    sync.Once
	onClose func()
}

func (l *closeNotifier) Close() error {
	l.once.Do(l.onClose)
	return l.Listener.Close()
}

func dirName(d datapath.Direction) string {
	if d == datapath.Egress {
		return "egress"
	}
	return "ingress"
}

// dialFromClient opens the egress proxy's connection to the destination
// from the client's address (IP_TRANSPARENT, any port) with the mark that
// tells the datapath it is the proxy's on behalf of that endpoint
// (bpf.MarkProxyUpstream): the destination's policy sees the client's
// identity, and the replies come back to this socket.
func dialFromClient(ctx context.Context, src netip.Addr, network, addr string) (net.Conn, error) {
	d := net.Dialer{
		Timeout:   10 * time.Second,
		LocalAddr: &net.TCPAddr{IP: src.AsSlice()},
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_TRANSPARENT, 1); serr != nil {
					return
				}
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_MARK, bpf.MarkProxyUpstream)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return d.DialContext(ctx, network, addr)
}
