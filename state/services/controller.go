package services

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/nodes"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/watchstore"
)

// Controller computes the backends of services with a selector.
type Controller struct {
	store      *Store
	log        *slog.Logger
	ipcache    *ipcache.Watcher
	identities *watchstore.Watcher[records.Identity]
	nodes      *nodes.Watcher
	services   *watchstore.Watcher[records.Service]
	trigger    chan struct{}
}

// NewController watches cluster's state through client and writes backends.
func NewController(client kvstore.Client, cluster string, log *slog.Logger) (*Controller, error) {
	store, err := NewStore(client, cluster, log)
	if err != nil {
		return nil, err
	}
	c := &Controller{store: store, log: store.log.With("component", "service-controller"), trigger: make(chan struct{}, 1)}
	kick := func() {
		select {
		case c.trigger <- struct{}{}:
		default:
		}
	}
	keys := records.NewKeys(client.Prefix())
	if c.ipcache, err = ipcache.NewWatcher(client, cluster, func(ipcache.Change) { kick() }, log); err != nil {
		return nil, err
	}
	if c.nodes, err = nodes.NewWatcher(client, cluster, func(nodes.Change) { kick() }, log); err != nil {
		return nil, err
	}
	c.identities = watchstore.New(client, watchstore.Config[records.Identity]{
		Prefix: keys.IdentitiesPrefix(), Decode: keys.DecodeIdentity,
		OnChange: func(watchstore.Change[records.Identity]) { kick() },
	}, log)
	c.services = watchstore.New(client, watchstore.Config[records.Service]{
		Prefix: keys.ServicesPrefix(cluster), Decode: keys.DecodeService,
		OnChange: func(watchstore.Change[records.Service]) { kick() },
	}, log)
	return c, nil
}

// Run keeps backends up to date until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return c.ipcache.Run(ctx) })
	g.Go(func() error { return c.nodes.Run(ctx) })
	g.Go(func() error { return c.identities.Run(ctx) })
	g.Go(func() error { return c.services.Run(ctx) })
	g.Go(func() error {
		for _, ch := range []<-chan struct{}{c.nodes.Synced(), c.identities.Synced(), c.services.Synced(), c.ipcache.Listed()} {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil
			}
		}
		bo := kvstore.NewBackoff(100*time.Millisecond, 10*time.Second)
		for {
			if err := c.reconcile(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("compute service backends", "err", err)
				bo.Wait(ctx)
				continue
			}
			bo.Reset()
			select {
			case <-c.trigger:
			case <-ctx.Done():
				return nil
			}
		}
	})
	return g.Wait()
}

var errNoSelector = errors.New("service has no selector")

// reconcile writes the backends of every selector service that differ.
func (c *Controller) reconcile(ctx context.Context) error {
	ids := map[records.ID]records.Labels{}
	for _, m := range c.identities.Snapshot() {
		ids[m.ID] = m.Labels
	}
	hosts := map[netip.Addr]string{}
	for _, n := range c.nodes.Snapshot() {
		for _, a := range n.Underlay {
			hosts[a] = n.Name
		}
	}
	entries := c.ipcache.Snapshot()
	var errs []error
	for _, svc := range c.services.Snapshot() {
		if len(svc.Selector) == 0 {
			continue
		}
		want := backendsFor(svc, entries, ids, hosts)
		if slices.Equal(svc.Backends, want) {
			continue
		}
		_, err := c.store.Update(ctx, svc.Namespace, svc.Name, func(s *records.Service) error {
			if len(s.Selector) == 0 {
				return errNoSelector
			}
			s.Backends = backendsFor(*s, entries, ids, hosts)
			return nil
		})
		if err != nil && !errors.Is(err, errNoSelector) && !errors.Is(err, kvstore.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// backendsFor lists, sorted, one backend per matching address and port.
func backendsFor(svc records.Service, entries map[netip.Addr]records.IPCacheEntry, ids map[records.ID]records.Labels, hosts map[netip.Addr]string) []records.Backend {
	var out []records.Backend
	for _, e := range entries {
		if !Matches(svc, ids[e.Identity]) {
			continue
		}
		for _, p := range svc.Ports {
			out = append(out, records.Backend{IP: e.IP, Port: p.TargetPort, Protocol: p.Protocol, PortName: p.Name, Node: hosts[e.HostIP], Ready: true})
		}
	}
	slices.SortFunc(out, func(a, b records.Backend) int {
		return cmp.Or(a.IP.Compare(b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Protocol, b.Protocol))
	})
	if len(out) > records.MaxServiceBackends {
		out = out[:records.MaxServiceBackends]
	}
	return out
}

// Matches reports whether an endpoint with labels is selected by svc: it is
// in the service's namespace and carries every selector label (source k8s).
func Matches(svc records.Service, labels records.Labels) bool {
	if ns, ok := labels.Get(records.SourceK8s, records.LabelNamespace); !ok || ns != svc.Namespace || len(svc.Selector) == 0 {
		return false
	}
	for k, v := range svc.Selector {
		if got, ok := labels.Get(records.SourceK8s, k); !ok || got != v {
			return false
		}
	}
	return true
}
