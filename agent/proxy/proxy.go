// Package proxy runs a node's L7 proxy: the HTTP listeners the datapath
// hands redirected flows to (docs/l7.md, "Redirection"), one for ingress
// and one for egress, on 127.0.0.1 of the node, transparent. Each request
// is decided by the rules of the node's endpoint the connection belongs to,
// as the policy engine computes them when the request arrives.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/proxy/httpproxy"
)

// Config is the proxy's listeners.
type Config struct {
	// IngressPort and EgressPort are the listeners' ports on 127.0.0.1;
	// 0 turns a direction off (its redirected flows are dropped with
	// "proxy unavailable").
	IngressPort, EgressPort int
}

// DefaultConfig listens on 15080 (ingress) and 15081 (egress).
func DefaultConfig() Config { return Config{IngressPort: 15080, EgressPort: 15081} }

// RegisterFlags adds --proxy-ingress-port and --proxy-egress-port.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.IngressPort, "proxy-ingress-port", c.IngressPort,
		"TCP port on 127.0.0.1 of the L7 proxy for ingress HTTP rules (0: off; such flows are then dropped with \"proxy unavailable\")")
	fs.IntVar(&c.EgressPort, "proxy-egress-port", c.EgressPort,
		"TCP port on 127.0.0.1 of the L7 proxy for egress HTTP rules (0: off, as for ingress)")
}

// Validate checks the ports.
func (c Config) Validate() error {
	var errs []error
	for name, p := range map[string]int{"proxy-ingress-port": c.IngressPort, "proxy-egress-port": c.EgressPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("--%s %d: want 0 (off) or 1-65535", name, p))
		}
	}
	if c.IngressPort != 0 && c.IngressPort == c.EgressPort {
		errs = append(errs, fmt.Errorf("--proxy-ingress-port and --proxy-egress-port are both %d: want two ports", c.IngressPort))
	}
	return errors.Join(errs...)
}

// Datapath is where the listeners' ports go (*datapath.Datapath).
type Datapath interface {
	SetProxy(ingress, egress uint16) error
}

// Policies gives the HTTP rules of a local endpoint (*agent/policy.Engine).
type Policies interface {
	HTTPPolicyOf(ip netip.Addr, dir datapath.Direction, port uint16) *policy.HTTPPolicy
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

	mu        sync.Mutex
	listening [2]uint16 // ingress, egress: ports written to the datapath
}

// New prepares the component; nothing listens until Run. peers names the
// identities of addresses (the node's ipcache), flows and enricher record
// requests as flows, metrics counts them (nil: not counted).
func New(cfg Config, dp Datapath, policies Policies, peers flow.EndpointLookup, flows httpproxy.Sink,
	enricher *flow.Enricher, metrics *httpproxy.Metrics, log *slog.Logger) (*Component, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Component{cfg: cfg, dp: dp, policies: policies, peers: peers, flows: flows, enricher: enricher,
		metrics: metrics, log: log.With("component", "l7-proxy")}, nil
}

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
		g.Go(func() error { c.keepServing(ctx, i, dir, uint16(port)); return nil })
	}
	return g.Wait()
}

// keepServing runs one listener until ctx ends, restarting it after a failure.
func (c *Component) keepServing(ctx context.Context, i int, dir datapath.Direction, port uint16) {
	backoff := kvstore.NewBackoff(200*time.Millisecond, 10*time.Second)
	for ctx.Err() == nil {
		err := c.serve(ctx, i, dir, port)
		if ctx.Err() != nil {
			return
		}
		delay := backoff.Next()
		c.log.Error("L7 proxy listener failed; its redirected flows are dropped until it is back", "direction", dirName(dir), "port", port, "err", err, "retry-in", delay.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
	}
}

// serve listens and serves until ctx ends or accepting fails.
func (c *Component) serve(ctx context.Context, i int, dir datapath.Direction, port uint16) error {
	ln, err := httpproxy.ListenTransparent(ctx, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port))
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

// publish writes the listener's port to the datapath.
func (c *Component) publish(i int, port uint16) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening[i] = port
	if err := c.dp.SetProxy(c.listening[0], c.listening[1]); err != nil {
		c.listening[i] = 0
		return err
	}
	return nil
}

// withdraw removes a stopped listener's port from the datapath; the
// pinned map keeps it across an agent restart otherwise, which is
// harmless: without a listener the programs find no socket and drop.
func (c *Component) withdraw(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listening[i] == 0 {
		return
	}
	c.listening[i] = 0
	if err := c.dp.SetProxy(c.listening[0], c.listening[1]); err != nil {
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
