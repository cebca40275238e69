package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/agent/clustermesh"
	"github.com/weftnet/weft/agent/endpoints"
	"github.com/weftnet/weft/agent/flows"
	"github.com/weftnet/weft/agent/health"
	"github.com/weftnet/weft/agent/ingress"
	bpfipcache "github.com/weftnet/weft/agent/ipcache"
	"github.com/weftnet/weft/agent/l7lb"
	"github.com/weftnet/weft/agent/metrics"
	"github.com/weftnet/weft/agent/nodes"
	"github.com/weftnet/weft/agent/policy"
	"github.com/weftnet/weft/agent/proxy"
	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/internal/errtrack"
	"github.com/weftnet/weft/k8s/podlabels"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/proxy/httpproxy"
	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/podcidr"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/syncstore"
)

// podLabelsWait is how long CreateEndpoint waits for a Kubernetes pod's
// mirrored record before failing (the CNI plugin then says "try again").
const podLabelsWait = 10 * time.Second

// Agent is one node's weft-agent.
type Agent struct {
	cfg      Config
	log      *slog.Logger
	started  time.Time
	store    kvstore.Client
	keys     records.Keys
	cluster  records.ClusterConfig
	nodeIP   netip.Addr
	underlay string
	podCIDR  netip.Prefix
	dp       *datapath.Datapath

	// global and globalPool are what the datapath translates with
	// (setupGlobal; zero: off).
	global, globalPool netip.Prefix

	owned     *syncstore.Store
	ids       *identity.Allocator
	publisher *ipcache.Publisher
	ipc       *ipcache.Watcher
	endpoints *endpoints.Manager
	nodes     *nodes.Table
	ipcache   *bpfipcache.Sync
	health    *health.Prober
	policy    *policy.Engine
	mesh      *clustermesh.Mesh
	services  *services.Sync
	l7lb      *l7lb.Component // L7LoadBalancing documents served on this node
	collector *gc.Collector   // runs while this agent holds the cluster's collector lock
	flows     *flows.Component
	proxy     *proxy.Component
	ingress   *ingress.Component
	registry  *prometheus.Registry
	metrics   *metrics.Agent
	errs      *errtrack.Registry // the last error each component logged

	nodeKey   string // this node's record, published by publishNode
	nodeValue []byte
}

// New connects to the store, takes this node's pod CIDR and loads the
// datapath. Nothing is served until Run.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Every component's last logged error is kept for weft status.
	errs := errtrack.New()
	log = slog.New(errtrack.Wrap(log.Handler(), errs, "agent"))
	a := &Agent{cfg: cfg, log: log.With("node", cfg.NodeName, "cluster", cfg.ClusterName), started: time.Now(), errs: errs}
	var err error
	if a.nodeIP, a.underlay, err = resolveUnderlay(cfg.NodeIP, cfg.UnderlayDevice); err != nil {
		return nil, err
	}
	a.registry = metrics.NewRegistry()
	if a.metrics, err = metrics.NewAgent(a.registry); err != nil {
		return nil, err
	}
	a.log.Info("connecting to the store", "backend", cfg.KVStore.Backend, "endpoints", cfg.KVStore.Endpoints)
	if a.store, err = dial.Open(ctx, cfg.KVStore, log); err != nil {
		return nil, err
	}
	a.store = a.metrics.InstrumentStore(a.store)
	if err := a.setup(ctx); err != nil {
		a.store.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

func (a *Agent) setup(ctx context.Context) error {
	a.keys = records.NewKeys(a.store.Prefix())
	var err error
	if a.cluster, err = a.ensureClusterConfig(ctx); err != nil {
		return err
	}
	cidrs, err := podcidr.New(a.store, podcidr.ConfigFrom(a.cluster), a.log)
	if err != nil {
		return err
	}
	got, err := cidrs.Acquire(ctx, a.cfg.NodeName)
	if err != nil {
		return fmt.Errorf("take a pod CIDR for node %s: %w", a.cfg.NodeName, err)
	}
	for _, p := range got {
		if p.Addr().Is4() {
			a.podCIDR = p
		}
	}
	if !a.podCIDR.IsValid() {
		return fmt.Errorf("take a pod CIDR for node %s: the pool %v has no IPv4 prefix", a.cfg.NodeName, a.cluster.PodCIDRs)
	}
	a.log.Info("pod CIDR taken", "cidr", a.podCIDR, "node-ip", a.nodeIP, "underlay", a.underlay)
	if err := a.publishNode(ctx); err != nil {
		return err
	}

	dpcfg := datapath.DefaultConfig()
	dpcfg.Node, dpcfg.BPFFS, dpcfg.Mode = a.cfg.NodeName, a.cfg.BPFFS, datapath.Mode(a.cluster.Routing)
	dpcfg.UnderlayDevice, dpcfg.CgroupPath, dpcfg.Log = a.underlay, a.cfg.CgroupPath, a.log.With("component", "datapath")
	dpcfg.Masquerade, dpcfg.NodeIP = a.cfg.Masquerade, a.nodeIP
	extra, err := a.cfg.nonMasquerade()
	if err != nil {
		return err
	}
	dpcfg.NonMasquerade = append(slices.Clone(a.cluster.PodCIDRs), extra...)
	if a.dp, err = datapath.New(ctx, dpcfg); err != nil {
		return fmt.Errorf("load datapath: %w", err)
	}
	if err := a.setupGlobal(); err != nil {
		return err
	}

	if a.owned, err = syncstore.New(a.store, syncstore.DefaultConfig(), a.log); err != nil {
		return err
	}
	idcfg := identity.DefaultConfig()
	idcfg.Cluster, idcfg.ClusterID, idcfg.Node = a.cluster.Name, a.cluster.ID, a.cfg.NodeName
	if a.ids, err = identity.New(a.store, idcfg, a.log); err != nil {
		return err
	}
	if a.publisher, err = ipcache.NewPublisher(a.owned, a.store.Prefix(), a.cluster.Name); err != nil {
		return err
	}
	if a.cluster.GlobalCIDR.IsValid() {
		a.publisher.SetGlobal(a.cluster.GlobalCIDR, a.cluster.PodCIDRs)
		a.log.Info("global addressing: pods are published with their global addresses", "global-cidr", a.cluster.GlobalCIDR)
	}
	a.ipcache = bpfipcache.New(a.dp, a.nodeIP, a.log)
	onIPCache := func(c ipcache.Change) { a.ipcache.OnChange(c); a.services.Changed() } // services recompute backends
	if a.ipc, err = ipcache.NewWatcher(a.store, a.cluster.Name, onIPCache, a.log); err != nil {
		return err
	}
	a.nodes = nodes.New(a.store, a.keys, a.cfg.NodeName, a.cluster.Name, a.dp, a.ipcache, a.log)
	a.health = health.NewProber(a.cfg.NodeName, a.cfg.HealthPort, a.cfg.HealthInterval, a.log)
	a.endpoints = endpoints.New(endpoints.Config{
		Dir: filepath.Join(a.cfg.StateDir, "endpoints"), Node: a.cfg.NodeName, Cluster: a.cluster.Name,
		NodeIP: a.nodeIP, PodCIDR: a.podCIDR,
	}, a.ids, a.dp, a.publisher, a.log)
	a.endpoints.SetPodLabels(podlabels.New(a.store, a.cluster.Name), podLabelsWait) // Kubernetes mode only
	a.policy = policy.New(a.store, a.keys, a.cfg.NodeName, a.dp, a.ipcache, a.endpoints.List, a.log)
	a.policy.OnRecompute = func(d time.Duration) { a.metrics.PolicyRecompute.Observe(d.Seconds()) }
	a.policy.FindEndpoint = a.endpoints.Find
	svcCIDR, _ := netip.ParsePrefix(a.cfg.ServiceCIDR) // checked by Config.Validate
	svcCfg := services.Config{Node: a.cfg.NodeName, Cluster: a.cluster.Name, NodeIP: a.nodeIP, ServiceCIDR: svcCIDR}
	if a.services, err = services.New(a.store, a.keys, svcCfg, a.dp, a.ipc, a.nodes, a.endpoints, a.log); err != nil {
		return err
	}
	a.endpoints.SetHooks(a.policy, a.services.Changed) // HostPorts are services
	if a.l7lb, err = l7lb.New(a.store, a.keys, l7lb.Config{Cluster: a.cluster.Name, NodeIP: a.nodeIP}, a.services, a.registry, a.log); err != nil {
		return err
	}
	a.services.SetL7Ready(a.l7lb.Ready()) // balanced ports are never programmed with their backends first
	a.ingress = ingress.New(a.store, a.keys, a.cluster.Name, a.nodeIP, a.cfg.Ingress, a.services, a.nodes, a.log)
	meshCfg := clustermesh.Config{Node: a.cfg.NodeName, NodeIP: a.nodeIP, Cluster: a.cluster, StateDir: filepath.Join(a.cfg.StateDir, "clustermesh")}
	a.mesh = clustermesh.New(a.store, a.keys, meshCfg, a.nodes, a.ipcache, a.policy, a.dp, a.log)
	a.mesh.OnServicesChanged(a.services.Changed)      // global services: remote services and pods
	a.services.SetRemoteSource(a.mesh.RemoteServices) // are pulled on every recompute
	a.services.SetRemoteGate(a.mesh.ServicesSynced, a.cfg.RemoteSyncTimeout)
	if err := a.mesh.Restore(ctx); err != nil { // before anything prunes
		return err
	}
	gcCfg := gc.Config{Runner: "agent " + a.cfg.NodeName, Interval: a.cfg.GCInterval, IdentityGrace: a.cfg.IdentityGCGrace, NodeGrace: a.cfg.NodeGCGrace}
	if a.collector, err = gc.New(a.store, a.cluster, gcCfg, a.log); err != nil {
		return err
	}
	return a.setupObservability()
}

// setupObservability builds the flow component and registers the
// datapath's counters.
func (a *Agent) setupObservability() error {
	a.metrics.OnScrape(a.refreshMetrics)
	if err := a.registry.Register(datapath.NewCollector(a.dp, a.log.With("component", "metrics"))); err != nil {
		return err
	}
	enricher := &flow.Enricher{
		Node: a.cfg.NodeName, Cluster: a.cluster.Name,
		Endpoints:  flows.Endpoints(a.ipc, remoteIPs{a.mesh}, a.cfg.NodeName, a.nodeIP),
		Identities: flows.Identities(a.ids, remoteIdentities{a.mesh}),
		Services:   flows.Services(a.services),
		Policies:   a.policy,
		GlobalCIDR: a.global, PodCIDR: a.globalPool,
	}
	var err error
	if a.flows, err = flows.New(a.cfg.Flows, a.dp, enricher, a.registry, a.log); err != nil {
		return err
	}
	pm, err := httpproxy.NewMetrics(a.registry)
	if err != nil {
		return fmt.Errorf("register L7 proxy metrics: %w", err)
	}
	pcfg := a.cfg.Proxy
	pcfg.CacheFile = filepath.Join(a.cfg.StateDir, "fqdn-cache.json")
	if a.proxy, err = proxy.New(pcfg, a.dp, a.policy, enricher.Endpoints, a.flows.Ring(), a.flows.Enricher(), pm, a.log); err != nil {
		return err
	}
	a.policy.SetFQDN(a.proxy.FQDNLookup) // toFQDNs select what the DNS proxy learnt
	return nil
}

// remoteIPs and remoteIdentities look addresses and identities of the
// connected clusters up for flow records (the mesh may not exist yet when
// the enricher is built: it is read at lookup time).
type remoteIPs struct{ m *clustermesh.Mesh }

func (r remoteIPs) Get(ip netip.Addr) (records.IPCacheEntry, bool) {
	if r.m == nil {
		return records.IPCacheEntry{}, false
	}
	return r.m.LookupIP(ip)
}

type remoteIdentities struct{ m *clustermesh.Mesh }

func (r remoteIdentities) Lookup(id records.ID) (records.Labels, bool) {
	if r.m == nil {
		return nil, false
	}
	return r.m.IdentityLabels(id)
}

// countLeaseLosses counts the store leases lost until ctx ends.
func (a *Agent) countLeaseLosses(ctx context.Context) {
	lost := a.store.LeaseLost()
	for {
		select {
		case <-lost:
			lost = a.store.LeaseLost() // the next lease's
			a.metrics.LeaseLosses.Inc()
		case <-ctx.Done():
			return
		}
	}
}

// refreshMetrics sets the gauges of what the agent holds, at scrape time.
func (a *Agent) refreshMetrics(m *metrics.Agent) {
	m.Endpoints.Set(float64(a.endpoints.Count()))
	m.IPCacheEntries.WithLabelValues(a.cluster.Name).Set(float64(a.ipc.Len()))
	m.Services.Set(float64(a.services.Count()))
	backends := 0
	for _, svc := range a.services.List().GetServices() {
		backends += len(svc.GetBackends())
	}
	m.ServiceBackends.Set(float64(backends))
	m.Identities.WithLabelValues("local").Set(float64(len(a.services.Identities().Snapshot())))
	for _, h := range a.health.Snapshot() {
		if h.Reachable {
			m.HealthProbe.WithLabelValues(h.Node).Set(h.Latency.Seconds())
		}
	}
	for _, rc := range a.mesh.Status() {
		var lastSync time.Time
		if ns := rc.GetLastSyncNs(); ns > 0 {
			lastSync = time.Unix(0, ns)
		}
		m.SetRemote(rc.GetName(), rc.GetConnected() && rc.GetSynced(), lastSync)
		m.RemoteEntries.WithLabelValues(rc.GetName(), "nodes").Set(float64(rc.GetNodes()))
		m.RemoteEntries.WithLabelValues(rc.GetName(), "endpoints").Set(float64(rc.GetEndpoints()))
		m.SetRemoteRejected(rc.GetName(), rc.GetRejected())
	}
}

// setupGlobal turns the datapath's global-address translation on when the
// cluster has global addressing and one IPv4 pool prefix (off otherwise,
// which also clears what an earlier run pinned).
func (a *Agent) setupGlobal() error {
	var pool []netip.Prefix
	for _, p := range a.cluster.PodCIDRs {
		if p.Addr().Is4() {
			pool = append(pool, p)
		}
	}
	global := a.cluster.GlobalCIDR
	if global.IsValid() && len(pool) != 1 {
		a.log.Warn("global addressing: the datapath translates only for a pod pool of one IPv4 prefix; pods are not reachable by their global addresses", "pool", a.cluster.PodCIDRs)
		global = netip.Prefix{}
	}
	var p netip.Prefix
	if len(pool) > 0 {
		p = pool[0]
	}
	if err := a.dp.SetGlobal(global, p, a.cluster.ID); err != nil {
		return fmt.Errorf("set up global addressing: %w", err)
	}
	a.global, a.globalPool = global, p
	return nil
}

// ensureClusterConfig reads cluster-config/<cluster>, creating it from the
// agent's flags when the cluster is new. A cluster that exists with another
// id or routing mode is refused: every node must agree.
func (a *Agent) ensureClusterConfig(ctx context.Context) (records.ClusterConfig, error) {
	pool, _ := a.cfg.pool()
	want := records.ClusterConfig{
		Name: a.cfg.ClusterName, ID: a.cfg.ClusterID, PodCIDRs: pool,
		PodCIDRMaskSize: a.cfg.PodCIDRMaskSize, Routing: a.cfg.RoutingMode,
	}
	key := a.keys.ClusterConfig(a.cfg.ClusterName)
	// Read first: the cluster exists on every start but the first, and a
	// read costs no raft proposal.
	kv, err := a.store.Get(ctx, key)
	if errors.Is(err, kvstore.ErrNotFound) {
		created, cerr := a.createClusterConfig(ctx, key, want)
		if cerr != nil {
			return records.ClusterConfig{}, cerr
		}
		if created {
			return want, nil
		}
		kv, err = a.store.Get(ctx, key) // another node created it meanwhile
	}
	if err != nil {
		return records.ClusterConfig{}, fmt.Errorf("read cluster configuration: %w", err)
	}
	have, err := a.keys.DecodeClusterConfig(key, kv.Value)
	if err != nil {
		return records.ClusterConfig{}, err
	}
	if have.ID != want.ID || have.Routing != want.Routing {
		return records.ClusterConfig{}, fmt.Errorf("cluster %s exists in the store with id %d and routing %s; this agent was started with --cluster-id %d --routing-mode %s: start it with the cluster's values",
			have.Name, have.ID, have.Routing, want.ID, want.Routing)
	}
	if !slices.Equal(have.PodCIDRs, want.PodCIDRs) || have.PodCIDRMaskSize != want.PodCIDRMaskSize {
		a.log.Warn("the cluster's pod CIDR pool in the store differs from --pod-cidr-pool; using the store's", "store", have.PodCIDRs, "flag", want.PodCIDRs)
	}
	return have, nil
}

// createClusterConfig creates the cluster's configuration; created is
// false when another node created it first.
func (a *Agent) createClusterConfig(ctx context.Context, key string, want records.ClusterConfig) (created bool, err error) {
	value, err := records.Encode(key, &want)
	if err != nil {
		return false, err
	}
	if _, err := a.store.Create(ctx, key, value); errors.Is(err, kvstore.ErrExists) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("create cluster configuration: %w", err)
	}
	a.log.Info("cluster configuration created", "id", want.ID, "routing", want.Routing, "pool", want.PodCIDRs)
	return true, nil
}

// Run serves until ctx ends: it starts the store-facing loops, restores
// endpoints from the last run, registers the node, and only then opens the
// API socket (so an answering socket means a ready agent).
func (a *Agent) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.owned.Run(ctx) })
	g.Go(func() error { return a.dp.Run(ctx) }) // conntrack garbage collection
	g.Go(func() error { return a.ids.Run(ctx) })
	g.Go(func() error { return a.ipc.Run(ctx) })
	g.Go(func() error {
		select {
		case <-a.ipc.Synced():
			a.ipcache.PodsSynced(ctx)
		case <-ctx.Done():
		}
		return nil
	})
	g.Go(func() error { return a.nodes.Run(ctx) })
	g.Go(func() error { return a.mesh.Run(ctx) })
	g.Go(func() error { return a.collector.Run(ctx) })
	g.Go(func() error { return a.services.Run(ctx) })
	g.Go(func() error { return a.l7lb.Run(ctx) })
	g.Go(func() error { return a.policy.Run(ctx) })
	g.Go(func() error { return a.health.Run(ctx, a.nodes) })
	g.Go(func() error { return health.Serve(ctx, a.nodeIP, a.cfg.HealthPort, a.cfg.NodeName) })
	g.Go(func() error { return a.flows.Run(ctx) })
	g.Go(func() error { return a.proxy.Run(ctx) })
	g.Go(func() error { return a.ingress.Run(ctx) })
	g.Go(func() error { a.countLeaseLosses(ctx); return nil })
	g.Go(func() error { return metrics.ListenAndServe(ctx, a.cfg.Metrics, a.registry) })
	g.Go(func() error { return metrics.ListenAndServePprof(ctx, a.cfg.Metrics) })
	g.Go(func() error {
		if err := a.register(ctx); err != nil {
			return err
		}
		// After the restore: the first listing re-checks every restored pod's labels.
		g.Go(func() error { return a.endpoints.FollowLabels(ctx) })
		return a.serveAPI(ctx)
	})
	err := g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return errors.Join(err, a.shutdown())
}

// publishNode writes the node record as soon as it is true: the node's
// address and pod CIDR are known. Other nodes route to it from then on,
// while this agent loads its datapath (flannel, too, writes its lease
// first). The write is bound to the store lease, so a start that fails
// later takes it away again; register hands it to the owned keys, which
// keep it across lease losses.
func (a *Agent) publishNode(ctx context.Context) error {
	node := records.Node{
		Name: a.cfg.NodeName, Cluster: a.cluster.Name, ClusterID: a.cluster.ID,
		Underlay: []netip.Addr{a.nodeIP}, PodCIDRs: []netip.Prefix{a.podCIDR}, BootID: bootID(),
	}
	a.nodeKey = a.keys.Node(a.cluster.Name, a.cfg.NodeName)
	var err error
	if a.nodeValue, err = records.Encode(a.nodeKey, &node); err != nil {
		return err
	}
	if _, err := a.store.UpdateIfDifferent(ctx, a.nodeKey, a.nodeValue, kvstore.Leased()); err != nil {
		return fmt.Errorf("publish node record: %w", err)
	}
	return nil
}

// register makes the node record an owned key, restores the endpoints of
// the last run and announces that this node's ipcache entries are all
// published.
func (a *Agent) register(ctx context.Context) error {
	a.owned.Upsert(a.nodeKey, a.nodeValue)
	if err := a.endpoints.Restore(ctx); err != nil {
		return fmt.Errorf("restore endpoints: %w", err)
	}
	if err := a.publisher.MarkSynced(time.Now()); err != nil {
		return err
	}
	if err := a.owned.WaitSynced(ctx); err != nil {
		return fmt.Errorf("publish node and endpoints: %w", err)
	}
	a.log.Info("node registered", "endpoints", a.endpoints.Count())
	return nil
}

// shutdown keeps endpoints and pinned maps (pods keep working) and leaves
// the store: closing the client revokes the lease, so the node's record and
// ipcache entries vanish from every other node.
func (a *Agent) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	if err := a.dp.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close datapath: %w", err))
	}
	if err := a.store.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	a.log.Info("agent stopped")
	return errors.Join(errs...)
}

func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return string(b[:len(b)-1])
}
