package readproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/prometheus/client_golang/prometheus"
)

// Range is a key range a remote may read: [Key, End), or Key alone when
// End is empty.
type Range struct{ Key, End string }

// Options are what New needs.
type Options struct {
	Config Config
	// TLS serves remotes: the serving certificate, ClientCAs the CA that
	// signs remote clusters' certificates (and nothing else), and
	// ClientAuth tls.RequireAndVerifyClientCert.
	TLS    *tls.Config
	Ranges []Range
	// Dial connects to the store as cluster's read-only user; the
	// connection is reused until the remote is revoked or Serve ends.
	Dial func(cluster string) (*grpc.ClientConn, error)
	// Readers lists the remote clusters currently allowed to read.
	Readers func(ctx context.Context) ([]string, error)
	// Metrics registers the front's metrics, with ConstLabels.
	Metrics     prometheus.Registerer
	ConstLabels prometheus.Labels
	Log         *slog.Logger
}

// Proxy is the read-only front.
type Proxy struct {
	o   Options
	m   *metrics
	log *slog.Logger
	srv *grpc.Server

	refreshMu   sync.Mutex // one refresh at a time
	lastRefresh time.Time  // under refreshMu

	mu      sync.Mutex
	loaded  bool
	allowed map[string]bool
	remotes map[string]*remote
	nextID  int64
}

// remote is the front's state of one remote cluster.
type remote struct {
	name     string
	lim      *rate.Limiter
	conns    map[*trackedConn]struct{}
	watches  int
	streams  map[int64]context.CancelFunc
	upstream *grpc.ClientConn
}

// New builds the front; nothing is served until Serve.
func New(o Options) (*Proxy, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.TLS == nil || o.TLS.ClientCAs == nil || o.Dial == nil || o.Readers == nil {
		return nil, errors.New("read-only front: TLS with client CAs, Dial and Readers are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{o: o, log: o.Log.With("component", "readproxy"), allowed: map[string]bool{}, remotes: map[string]*remote{}}
	var err error
	if p.m, err = newMetrics(o.Metrics, o.ConstLabels); err != nil {
		return nil, err
	}
	p.srv = grpc.NewServer(
		grpc.Creds(limitCreds{TransportCredentials: credentials.NewTLS(o.TLS), p: p}),
		grpc.ChainUnaryInterceptor(p.unary),
		grpc.ChainStreamInterceptor(p.stream),
		grpc.UnknownServiceHandler(p.unknown),
		// Etcd clients ping every few seconds.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
	)
	pb.RegisterKVServer(p.srv, &kvServer{p: p})
	pb.RegisterWatchServer(p.srv, &watchServer{p: p})
	return p, nil
}

// Serve reads the readers, then serves on every listener until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ls []net.Listener) error {
	p.refresh(ctx)
	go p.refreshLoop(ctx)
	go func() {
		<-ctx.Done()
		p.srv.Stop()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, r := range p.remotes {
			if r.upstream != nil {
				r.upstream.Close()
				r.upstream = nil
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(ls))
	for i, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs[i] = fmt.Errorf("serve remote clusters on %s: %w", l.Addr(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (p *Proxy) refreshLoop(ctx context.Context) {
	t := time.NewTicker(p.o.Config.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.refresh(ctx)
		}
	}
}

// recheckAfter bounds how often an unknown remote makes the front re-read
// the readers (another apiserver of the cluster may have just added it).
const recheckAfter = 250 * time.Millisecond

// refresh re-reads the readers and drops the remotes no longer among them.
func (p *Proxy) refresh(ctx context.Context) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	p.refreshLocked(ctx)
}

// recheck makes sure the readers were read after since (when a request of
// an unknown remote arrived): another apiserver of the cluster may have
// admitted it just before. Refreshes stay at most one per recheckAfter: a
// request waits for the next one rather than being refused on a list older
// than itself.
func (p *Proxy) recheck(ctx context.Context, since time.Time) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	if !p.lastRefresh.Before(since) {
		return // read after the request arrived
	}
	if wait := recheckAfter - time.Since(p.lastRefresh); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
	}
	p.refreshLocked(ctx)
}

func (p *Proxy) refreshLocked(ctx context.Context) {
	p.lastRefresh = time.Now()
	names, err := p.o.Readers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("list the remote clusters allowed to read; keeping the last list", "err", err)
		}
		return
	}
	now := map[string]bool{}
	for _, n := range names {
		now[n] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := range p.allowed {
		if !now[n] {
			p.dropLocked(n)
		}
	}
	p.allowed, p.loaded = now, true
}

// Allow admits cluster at once (its user was just created).
func (p *Proxy) Allow(cluster string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.allowed[cluster] = true
}

// Revoke refuses cluster at once and closes its connections and watches.
// Call it after the remote's user is gone: a refresh under way is waited
// for, so it cannot admit the remote again.
func (p *Proxy) Revoke(cluster string) {
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.allowed, cluster)
	p.dropLocked(cluster)
}

func (p *Proxy) dropLocked(cluster string) {
	r := p.remotes[cluster]
	if r == nil {
		return
	}
	for _, cancel := range r.streams {
		cancel()
	}
	for c := range r.conns {
		// Close releases through the connection's own release, which
		// takes p.mu: close outside the lock.
		go c.Close()
	}
	if r.upstream != nil {
		r.upstream.Close()
		r.upstream = nil
	}
	p.log.Info("remote cluster no longer reads: connections and watches closed", "remote", cluster)
}

// remoteLocked returns cluster's state, creating it.
func (p *Proxy) remoteLocked(cluster string) *remote {
	r := p.remotes[cluster]
	if r == nil {
		r = &remote{name: cluster, lim: rate.NewLimiter(rate.Limit(p.o.Config.RequestRate), p.o.Config.RequestBurst),
			conns: map[*trackedConn]struct{}{}, streams: map[int64]context.CancelFunc{}}
		p.remotes[cluster] = r
	}
	return r
}

// upstream is the store connection of r's user.
func (p *Proxy) upstream(r *remote) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.upstream == nil {
		c, err := p.o.Dial(r.name)
		if err != nil {
			return nil, fmt.Errorf("connect to the store as remote %s: %w", r.name, err)
		}
		r.upstream = c
	}
	return r.upstream, nil
}

// addStream registers a watch stream's cancel, so Revoke ends it.
func (p *Proxy) addStream(r *remote, cancel context.CancelFunc) func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	id := p.nextID
	r.streams[id] = cancel
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(r.streams, id)
	}
}
