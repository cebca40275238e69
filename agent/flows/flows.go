package flows

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/flow"
)

// Datapath opens the node's flow events (*datapath.Datapath).
type Datapath interface {
	Flows() (*datapath.FlowReader, error)
}

// Component records and serves one node's flows.
type Component struct {
	cfg      flow.Config
	dp       Datapath
	ring     *flow.Ring
	observer *flow.Observer
	enricher *flow.Enricher
	metrics  *flow.Metrics
	log      *slog.Logger
}

// New prepares the component; nothing is read until Run. The enricher's
// Node and Cluster name the observing node.
func New(cfg flow.Config, dp Datapath, enricher *flow.Enricher, reg prometheus.Registerer, log *slog.Logger) (*Component, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ring := flow.NewRing(cfg.RingSize)
	m, err := flow.NewMetrics(reg, ring)
	if err != nil {
		return nil, fmt.Errorf("register flow metrics: %w", err)
	}
	if enricher.Clock == nil {
		enricher.Clock = flow.NewClock()
	}
	return &Component{cfg: cfg, dp: dp, ring: ring, observer: flow.NewObserver(ring, enricher.Node),
		enricher: enricher, metrics: m, log: log.With("component", "flows")}, nil
}

// Ring is where the node's flows are recorded; the L7 proxy writes its
// records there too.
func (c *Component) Ring() *flow.Ring { return c.ring }

// Enricher names the ends of the node's flows.
func (c *Component) Enricher() *flow.Enricher { return c.enricher }

// Observer serves the node's flows (agentapi.ObserverServer).
func (c *Component) Observer() *flow.Observer { return c.observer }

// Run records flows and, if configured, serves them on TCP, until ctx
// ends. With flows disabled it only waits.
func (c *Component) Run(ctx context.Context) error {
	if !c.cfg.Enabled {
		c.log.Info("flow recording disabled")
		<-ctx.Done()
		return nil
	}
	rd, err := c.dp.Flows()
	if err != nil {
		return err
	}
	defer rd.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return flow.NewRecorder(rd, c.enricher, c.ring, c.metrics, c.log).Run(ctx) })
	if c.cfg.ListenAddress != "" {
		tlsCfg, err := flow.ServerTLS(c.cfg.TLSCertFile, c.cfg.TLSKeyFile, c.cfg.TLSClientCAFile)
		if err != nil {
			return err
		}
		l, err := net.Listen("tcp", c.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("listen for flows on %s: %w", c.cfg.ListenAddress, err)
		}
		c.log.Info("serving flows", "address", l.Addr().String())
		g.Go(func() error { return flow.Serve(ctx, l, tlsCfg, c.observer) })
	}
	return g.Wait()
}
