package l7lb

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

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/proxy/l7lb"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// Config is the node the component serves.
type Config struct {
	Cluster string
	// NodeIP is where the listeners are opened: an address of the node
	// its pods reach (the socket load balancer sends them there).
	NodeIP netip.Addr
}

// Services is the node's service table (*agent/services.Sync).
type Services interface {
	SetL7Redirect(sp services.ServicePort, to netip.AddrPort)
	Backends(sp services.ServicePort) ([]netip.AddrPort, bool)
}

// Component runs the node's L7 load balancers.
type Component struct {
	cfg     Config
	svcs    Services
	store   kvstore.Client
	keys    records.Keys
	log     *slog.Logger
	recs    *watchstore.Watcher[records.L7LoadBalancingRef]
	kick    chan struct{}
	metrics *l7lb.Metrics

	ready     chan struct{} // closed after the first reconcile
	readyOnce sync.Once

	mu      sync.Mutex
	running map[string]*listener // by record key
	failed  map[string]string    // documents whose listener could not be opened: why
}

// startRetry is how long a listener that could not be opened waits to be
// tried again.
const startRetry = time.Second

// listener is one document's balancer on the node.
type listener struct {
	doc     string // the document it runs
	sp      services.ServicePort
	addr    netip.AddrPort
	srv     *http.Server
	handler *swapHandler
	err     string // why the document is not served ("" when it is)
}

// swapHandler lets a changed document replace the balancer without
// closing the listener.
type swapHandler struct {
	mu sync.RWMutex
	h  *l7lb.Balancer
}

// name is the document the balancer serves, as metrics name it.
func (s *swapHandler) name() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.h.Name()
}

// set serves with h from now on and closes the idle upstream connections
// of the balancer it replaces.
func (s *swapHandler) set(h *l7lb.Balancer) {
	s.mu.Lock()
	old := s.h
	s.h = h
	s.mu.Unlock()
	old.CloseIdleConnections()
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

// New returns the component of cfg's node; the balancers' counters are
// registered with reg (proxy/l7lb.NewMetrics).
func New(store kvstore.Client, keys records.Keys, cfg Config, svcs Services, reg prometheus.Registerer, log *slog.Logger) (*Component, error) {
	m, err := l7lb.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register L7 load balancer metrics: %w", err)
	}
	c := &Component{cfg: cfg, svcs: svcs, store: store, keys: keys, log: log.With("component", "l7lb"), metrics: m,
		kick: make(chan struct{}, 1), ready: make(chan struct{}), running: map[string]*listener{}, failed: map[string]string{}}
	c.recs = watchstore.New(store, watchstore.Config[records.L7LoadBalancingRef]{
		Prefix: keys.L7LBPrefix(cfg.Cluster), Decode: keys.DecodeL7LB,
		Equal:    func(a, b records.L7LoadBalancingRef) bool { return a == b },
		OnChange: func(watchstore.Change[records.L7LoadBalancingRef]) { c.changed() },
	}, c.log)
	return c, nil
}

// Ready is closed once the documents the store held at start are served
// and their redirects set (services.Sync.SetL7Ready waits for it).
func (c *Component) Ready() <-chan struct{} { return c.ready }

func (c *Component) changed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run watches the records and keeps one listener per document until ctx
// ends, then closes them and removes the redirects.
func (c *Component) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.recs.Run(ctx) })
	g.Go(func() error {
		defer c.closeAll()
		select {
		case <-c.recs.Synced():
		case <-ctx.Done():
			return nil
		}
		for {
			c.reconcile()
			c.readyOnce.Do(func() { close(c.ready) })
			select {
			case <-c.kick:
			case <-ctx.Done():
				return nil
			}
		}
	})
	return g.Wait()
}

// reconcile starts, updates and stops listeners to match the records.
func (c *Component) reconcile() {
	want := c.recs.Snapshot()
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, l := range c.running {
		if r, ok := want[key]; !ok || r.Document != l.doc && l.srv == nil {
			c.stop(key, l)
		}
	}
	for key := range c.failed {
		if _, ok := want[key]; !ok {
			delete(c.failed, key)
		}
	}
	for key, r := range want {
		l := c.running[key]
		if l != nil && l.doc == r.Document {
			continue
		}
		p, err := l7lb.Parse([]byte(r.Document))
		if err != nil {
			if l != nil {
				c.stop(key, l)
			}
			c.log.Warn("L7LoadBalancing not served: its document does not parse", "key", key, "err", err)
			c.running[key] = &listener{doc: r.Document, err: err.Error()}
			continue
		}
		sp := services.ServicePort{Namespace: p.Metadata.Namespace, Name: p.Spec.Service, Port: uint16(p.Spec.Port)}
		bal := l7lb.NewBalancer(p, c.resolve, nil).CountIn(c.metrics)
		if l != nil { // a changed document: same listener, new balancer
			l.handler.set(bal)
			l.doc = r.Document
			if l.sp != sp {
				c.svcs.SetL7Redirect(l.sp, netip.AddrPort{})
				l.sp = sp
				c.svcs.SetL7Redirect(sp, l.addr)
			}
			c.log.Info("L7LoadBalancing updated", "key", key, "service", sp.Namespace+"/"+sp.Name, "port", sp.Port)
			continue
		}
		l, err = c.start(sp, bal)
		if err != nil {
			if c.failed[key] != err.Error() { // logged once, retried every startRetry
				c.log.Error("start L7 load balancer", "key", key, "err", err)
			}
			c.failed[key] = err.Error()
			time.AfterFunc(startRetry, c.changed)
			continue
		}
		delete(c.failed, key)
		l.doc = r.Document
		c.running[key] = l
		c.svcs.SetL7Redirect(sp, l.addr)
		c.log.Info("L7LoadBalancing serving", "key", key, "service", sp.Namespace+"/"+sp.Name, "port", sp.Port, "listener", l.addr)
	}
}

// start opens a listener on the node's address (a port the kernel picks).
func (c *Component) start(sp services.ServicePort, h *l7lb.Balancer) (*listener, error) {
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(c.cfg.NodeIP, 0).String())
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", c.cfg.NodeIP, err)
	}
	sh := &swapHandler{h: h}
	srv := &http.Server{Handler: sh, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("serve L7 load balancer", "service", sp.Namespace+"/"+sp.Name, "err", err)
		}
	}()
	return &listener{sp: sp, addr: netip.MustParseAddrPort(ln.Addr().String()), srv: srv, handler: sh}, nil
}

// stop removes the redirect first (new connections go to the backends
// again), then lets the requests in flight finish for up to 5 s.
func (c *Component) stop(key string, l *listener) {
	delete(c.running, key)
	if l.srv == nil {
		return
	}
	c.svcs.SetL7Redirect(l.sp, netip.AddrPort{})
	c.metrics.Forget(l.handler.name())
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
		l.handler.mu.RLock()
		defer l.handler.mu.RUnlock()
		l.handler.h.CloseIdleConnections()
	}()
	c.log.Info("L7LoadBalancing stopped", "key", key)
}

func (c *Component) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for key, l := range c.running {
		c.stop(key, l)
	}
}

// resolve gives the balancer a Service port's backends from the node's
// service table.
func (c *Component) resolve(t l7lb.Target) ([]netip.AddrPort, error) {
	addrs, ok := c.svcs.Backends(services.ServicePort{Namespace: t.Namespace, Name: t.Service, Port: uint16(t.Port)})
	if !ok {
		return nil, fmt.Errorf("no service %s/%s with TCP port %d on this node", t.Namespace, t.Service, t.Port)
	}
	return addrs, nil
}

// Status is what the node does with one document.
type Status struct {
	Listener netip.AddrPort // invalid when not served
	Error    string
}

// Status reports, by record key, what the node does with each document.
func (c *Component) Status() map[string]Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Status, len(c.running))
	for key, l := range c.running {
		st := Status{Listener: l.addr, Error: l.err}
		if l.err == "" {
			if _, ok := c.svcs.Backends(l.sp); !ok {
				st.Error = fmt.Sprintf("service %s/%s has no TCP port %d on this node (yet): nothing is redirected", l.sp.Namespace, l.sp.Name, l.sp.Port)
			}
		}
		out[key] = st
	}
	for key, why := range c.failed {
		out[key] = Status{Error: "no listener: " + why}
	}
	return out
}
