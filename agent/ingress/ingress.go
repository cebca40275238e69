package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/weftnet/weft/kvstore"
	pingress "github.com/weftnet/weft/proxy/ingress"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// listenRetry is how long a listener that could not bind waits to retry.
const listenRetry = 5 * time.Second

// Backends resolves a Service port to its ready backends
// (*agent/services.Sync).
type Backends interface {
	BackendsOf(ns, name string, port int32, portName string) ([]netip.AddrPort, error)
}

// Nodes lists the cluster's nodes (*agent/nodes.Table).
type Nodes interface {
	List() []records.Node
}

// Component serves the cluster's Ingresses on this node.
type Component struct {
	cfg      Config
	cluster  string
	nodeIP   netip.Addr
	store    kvstore.Client
	keys     records.Keys
	backends Backends
	nodes    Nodes
	log      *slog.Logger
	ings     *watchstore.Watcher[records.Ingress]
	secrets  *watchstore.Watcher[records.IngressSecret]
	handler  *pingress.Handler
	kick     chan struct{}

	mu     sync.Mutex
	served []served             // the last build, sorted by key
	certs  map[string]certEntry // parsed certificates by record key
	// active: some Ingress is stored, so the node listens; activeChanged
	// is closed (and replaced) when it changes.
	active        bool
	activeChanged chan struct{}
}

// served is one Ingress record as the last build saw it.
type served struct {
	rec records.Ingress
	ing networkingv1.Ingress
	err error // not served: why
}

type certEntry struct {
	rec  records.IngressSecret
	cert *tls.Certificate
}

// New returns the component of the node at nodeIP in cluster.
func New(store kvstore.Client, keys records.Keys, cluster string, nodeIP netip.Addr, cfg Config, backends Backends, nodes Nodes, log *slog.Logger) *Component {
	c := &Component{cfg: cfg, cluster: cluster, nodeIP: nodeIP, store: store, keys: keys, backends: backends, nodes: nodes,
		log: log.With("component", "ingress"), kick: make(chan struct{}, 1), certs: map[string]certEntry{},
		activeChanged: make(chan struct{})}
	empty, _ := pingress.Build(nil)
	c.handler = pingress.NewHandler(empty, c.resolve)
	changed := func() {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	c.ings = watchstore.New(store, watchstore.Config[records.Ingress]{
		Prefix: keys.IngressesPrefix(cluster), Decode: keys.DecodeIngress,
		OnChange: func(watchstore.Change[records.Ingress]) { changed() },
	}, c.log)
	c.secrets = watchstore.New(store, watchstore.Config[records.IngressSecret]{
		Prefix: keys.IngressSecretsPrefix(cluster), Decode: keys.DecodeIngressSecret,
		OnChange: func(watchstore.Change[records.IngressSecret]) { changed() },
	}, c.log)
	return c
}

// Run watches the records and serves until ctx ends.
func (c *Component) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.ings.Run(ctx) })
	g.Go(func() error { return c.secrets.Run(ctx) })
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-c.kick:
				c.rebuild()
			}
		}
	})
	if c.cfg.HTTPPort != 0 {
		g.Go(func() error { return c.serve(ctx, c.cfg.HTTPPort, nil) })
	}
	if c.cfg.HTTPSPort != 0 {
		tlsCfg := c.handler.TLSConfig(c.certificate)
		g.Go(func() error { return c.serve(ctx, c.cfg.HTTPSPort, tlsCfg) })
	}
	return g.Wait()
}

// serve listens on the node's address and port while the cluster has
// Ingresses, until ctx ends (a node without Ingresses leaves the port to
// others); a port that cannot be bound (in use) is retried, and logged.
func (c *Component) serve(ctx context.Context, port int, tlsCfg *tls.Config) error {
	addr := net.JoinHostPort(c.nodeIP.String(), strconv.Itoa(port))
	for {
		if !c.waitActive(ctx, true) {
			return nil
		}
		// Served until ctx ends or the last Ingress is deleted.
		sctx, cancel := context.WithCancel(ctx)
		go func() {
			if c.waitActive(sctx, false) {
				cancel()
			}
		}()
		err := c.listenAndServe(sctx, addr, tlsCfg)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			c.log.Info("no Ingress left: not serving", "address", addr)
			continue
		}
		c.log.Error("serve Ingresses", "address", addr, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(listenRetry):
		}
	}
}

// listenAndServe serves the Ingresses on addr until ctx ends (nil) or
// listening fails.
func (c *Component) listenAndServe(ctx context.Context, addr string, tlsCfg *tls.Config) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{Handler: c.handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(c.log.Handler(), slog.LevelDebug)}
	c.log.Info("serving Ingresses", "address", addr, "tls", tlsCfg != nil)
	stop := context.AfterFunc(ctx, func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// rebuild checks every record, builds the table of those that are valid
// and together consistent, and swaps it into the handler.
func (c *Component) rebuild() {
	recs := c.ings.Snapshot()
	var good []networkingv1.Ingress
	var out []served
	for _, key := range slices.Sorted(maps.Keys(recs)) {
		s := served{rec: recs[key]}
		s.ing, s.err = pingress.FromDocument(s.rec.Document)
		if s.err == nil {
			s.err = pingress.Check(s.ing)
		}
		if s.err == nil {
			// Together with the others (e.g. two default backends).
			if _, err := pingress.Build(append(slices.Clone(good), s.ing)); err != nil {
				s.err = err
			} else {
				good = append(good, s.ing)
			}
		}
		if s.err != nil {
			c.log.Warn("ingress not served", "ingress", s.rec.Namespace+"/"+s.rec.Name, "err", s.err)
		}
		out = append(out, s)
	}
	t, err := pingress.Build(good)
	if err != nil { // each was built with the others above
		c.log.Error("build the ingress table", "err", err)
		return
	}
	c.handler.Update(t)
	c.mu.Lock()
	c.served = out
	if active := len(out) > 0; active != c.active {
		c.active = active
		close(c.activeChanged)
		c.activeChanged = make(chan struct{})
	}
	c.mu.Unlock()
}

// waitActive waits until the node has Ingresses to serve (want true) or
// none (want false); false when ctx ended first.
func (c *Component) waitActive(ctx context.Context, want bool) bool {
	for {
		c.mu.Lock()
		active, changed := c.active, c.activeChanged
		c.mu.Unlock()
		if active == want {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

func (c *Component) resolve(b pingress.Backend) ([]netip.AddrPort, error) {
	return c.backends.BackendsOf(b.Namespace, b.Service, b.Port, b.PortName)
}

// certificate loads the certificate of an Ingress's spec.tls entry from
// its record, parsed once per record value.
func (c *Component) certificate(t pingress.TLS) (*tls.Certificate, error) {
	key := c.keys.IngressSecret(c.cluster, t.Namespace, t.SecretName)
	rec, ok := c.secrets.Get(key)
	if !ok {
		return nil, fmt.Errorf("secret %s/%s: not stored (weft ingress apply --tls-secret, or a kubernetes.io/tls Secret)", t.Namespace, t.SecretName)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.certs[key]; ok && e.rec == rec {
		return e.cert, nil
	}
	cert, err := tls.X509KeyPair([]byte(rec.CertPEM), []byte(rec.KeyPEM))
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", t.Namespace, t.SecretName, err)
	}
	c.certs[key] = certEntry{rec: rec, cert: &cert}
	return &cert, nil
}
