package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/agent/connectivity"
	"github.com/weftnet/weft/agent/endpoints"
	"github.com/weftnet/weft/agent/ingress"
	"github.com/weftnet/weft/agent/l7lb"
	"github.com/weftnet/weft/agent/metrics"
	"github.com/weftnet/weft/agent/policy"
	"github.com/weftnet/weft/agent/services"
	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// serveAPI serves the gRPC API on the unix socket until ctx ends.
func (a *Agent) serveAPI(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Dir(a.cfg.Socket), 0o755); err != nil {
		return fmt.Errorf("create socket dir: %w", err)
	}
	os.Remove(a.cfg.Socket) // left by a killed agent
	l, err := net.Listen("unix", a.cfg.Socket)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Socket, err)
	}
	if err := os.Chmod(a.cfg.Socket, 0o600); err != nil {
		l.Close()
		return fmt.Errorf("restrict %s: %w", a.cfg.Socket, err)
	}
	srv := grpc.NewServer()
	agentapi.RegisterAgentServer(srv, &api{a: a})
	agentapi.RegisterServicesServer(srv, services.NewAPI(a.services))
	agentapi.RegisterL7LoadBalancingServer(srv, l7lb.NewAPI(a.l7lb))
	agentapi.RegisterPolicyServer(srv, countedPolicyAPI{policy.NewAPI(a.policy, a.flows.Observer()), a.metrics, a.proxy.Cache()})
	agentapi.RegisterObserverServer(srv, a.flows.Observer())
	agentapi.RegisterIngressesServer(srv, ingress.NewAPI(a.ingress))
	cx := connectivity.New(connectivity.Config{Node: a.cfg.NodeName, NodeIP: a.nodeIP, StateDir: a.cfg.StateDir}, a.log)
	defer cx.Close()
	agentapi.RegisterConnectivityServer(srv, cx)
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	a.log.Info("agent ready", "socket", a.cfg.Socket)
	if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve API: %w", err)
	}
	os.Remove(a.cfg.Socket)
	return nil
}

// countedPolicyAPI counts policy imports by outcome.
type countedPolicyAPI struct {
	*policy.API
	m     *metrics.Agent
	fqdns *fqdn.Cache
}

// ListFQDNCache lists the node's FQDN cache (weft fqdn cache list).
func (c countedPolicyAPI) ListFQDNCache(_ context.Context, req *agentapi.ListFQDNCacheRequest) (*agentapi.ListFQDNCacheResponse, error) {
	want := fqdn.Normalize(req.GetName())
	resp := &agentapi.ListFQDNCacheResponse{}
	for _, e := range c.fqdns.Entries() {
		if want != "" && e.Name != want {
			continue
		}
		resp.Entries = append(resp.Entries, &agentapi.FQDNCacheEntry{Name: e.Name, Ip: e.IP.String(), ExpiresUnixNs: e.Expires.UnixNano()})
	}
	return resp, nil
}

func (c countedPolicyAPI) Import(ctx context.Context, req *agentapi.ImportPolicyRequest) (*agentapi.ImportPolicyResponse, error) {
	resp, err := c.API.Import(ctx, req)
	outcome := "refused"
	switch {
	case err == nil && resp.GetStored():
		outcome = "stored"
	case err == nil && req.GetDryRun():
		outcome = "dry_run"
	}
	c.m.PolicyImports.WithLabelValues(outcome).Inc()
	return resp, err
}

// api implements agentapi.AgentServer.
type api struct {
	agentapi.UnimplementedAgentServer
	a *Agent
}

func (s *api) CreateEndpoint(ctx context.Context, req *agentapi.CreateEndpointRequest) (*agentapi.Endpoint, error) {
	ep, err := s.a.endpoints.Create(ctx, req)
	switch {
	case errors.Is(err, endpoints.ErrInvalidRequest):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, endpoints.ErrExhausted):
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, endpoints.ErrUnavailable):
		return nil, status.Error(codes.Unavailable, err.Error())
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	return s.toAPI(ep)
}

func (s *api) DeleteEndpoint(ctx context.Context, req *agentapi.DeleteEndpointRequest) (*agentapi.DeleteEndpointResponse, error) {
	if req.ContainerId == "" {
		return nil, status.Error(codes.InvalidArgument, "container_id is empty")
	}
	existed, err := s.a.endpoints.Delete(ctx, req.ContainerId, req.Ifname)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &agentapi.DeleteEndpointResponse{Existed: existed}, nil
}

func (s *api) GetEndpoint(ctx context.Context, req *agentapi.GetEndpointRequest) (*agentapi.Endpoint, error) {
	ip, _ := netip.ParseAddr(req.Ip)
	ep := s.a.endpoints.Find(func(ep *endpoints.Endpoint) bool {
		switch {
		case req.Id != 0:
			return uint32(ep.ID) == req.Id
		case req.ContainerId != "":
			return ep.ContainerID == req.ContainerId || strings.HasPrefix(ep.ContainerID, req.ContainerId)
		case req.Ip != "":
			return ep.IP == ip
		case req.Pod != "":
			return ep.Namespace+"/"+ep.Pod == req.Pod || ep.Pod == req.Pod
		}
		return false
	})
	if ep == nil {
		return nil, status.Errorf(codes.NotFound, "no endpoint on node %s matches %v", s.a.cfg.NodeName, req)
	}
	return s.toAPI(ep)
}

func (s *api) ListEndpoints(ctx context.Context, _ *agentapi.ListEndpointsRequest) (*agentapi.ListEndpointsResponse, error) {
	resp := &agentapi.ListEndpointsResponse{}
	for _, ep := range s.a.endpoints.List() {
		e, err := s.toAPI(ep)
		if err != nil {
			return nil, err
		}
		resp.Endpoints = append(resp.Endpoints, e)
	}
	return resp, nil
}

func (s *api) toAPI(ep *endpoints.Endpoint) (*agentapi.Endpoint, error) {
	mtu, err := s.a.dp.PodMTU()
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	gwMAC := ""
	if lnk, err := linkByName(ep.HostIfName); err == nil {
		gwMAC = lnk.Attrs().HardwareAddr.String()
	}
	return &agentapi.Endpoint{
		Id: uint32(ep.ID), ContainerId: ep.ContainerID, Netns: ep.NetNS, Ifname: ep.IfName,
		HostIfname: ep.HostIfName, Namespace: ep.Namespace, PodName: ep.Pod,
		Ipv4: netip.PrefixFrom(ep.IP, 32).String(), GatewayIpv4: endpoints.Gateway.String(), GatewayMac: gwMAC,
		Mtu: uint32(mtu), Routes: []*agentapi.Route{{Dst: "0.0.0.0/0", Gw: endpoints.Gateway.String()}},
		Identity: uint32(ep.Identity), Labels: endpoints.SortedLabels(ep.IdentityLabels), State: "ready",
		Node:       s.a.cfg.NodeName,
		Policy:     s.a.policy.EndpointPolicy(ep),
		GlobalIpv4: globalIPv4(s.a.cluster, ep.IP),
	}, nil
}

// statusStoreWait bounds the store reads of a Status call (heartbeat and
// last collection, read concurrently): a store without quorum makes the
// answer say so within it instead of hanging.
const statusStoreWait = 2 * time.Second

func (s *api) Status(ctx context.Context, req *agentapi.StatusRequest) (*agentapi.StatusResponse, error) {
	a := s.a
	var (
		st   kvstore.Status
		coll *agentapi.Collection
		k8s  *agentapi.KubernetesSource
		wg   sync.WaitGroup
	)
	wg.Add(3)
	go func() {
		defer wg.Done()
		k8s = a.kubernetesSource(ctx)
	}()
	go func() {
		defer wg.Done()
		sctx, cancel := context.WithTimeout(ctx, statusStoreWait)
		defer cancel()
		st = a.store.Status(sctx)
	}()
	go func() {
		defer wg.Done()
		coll = a.lastCollection(ctx)
	}()
	wg.Wait()
	resp := &agentapi.StatusResponse{
		Node: a.cfg.NodeName, Cluster: a.cluster.Name, ClusterId: a.cluster.ID, Version: a.cfg.Version,
		RoutingMode: a.cluster.Routing, NodeIpv4: a.nodeIP.String(), PodCidrs: []string{a.podCIDR.String()},
		Store: &agentapi.StoreStatus{Backend: st.Backend, Endpoints: st.Endpoints, Quorum: st.Quorum, Synced: a.synced()},
		Datapath: &agentapi.DatapathStatus{AttachMode: a.dp.AttachMode(), BpfRoot: filepath.Join(a.cfg.BPFFS, "weft", a.cfg.NodeName),
			Counters: map[string]uint64{}},
		Endpoints: uint32(a.endpoints.Count()), Nodes: uint32(len(a.nodes.List())), Services: uint32(a.services.Count()),
		IpcacheEntries: uint32(a.ipc.Len() + a.mesh.IPCacheLen()), Uptime: time.Since(a.started).Round(time.Second).String(),
	}
	if !st.Heartbeat.IsZero() {
		resp.Store.Heartbeat = st.Heartbeat.Format(time.RFC3339)
	}
	if st.Err != nil {
		resp.Store.Error = st.Err.Error()
	}
	if m, err := a.dp.Metrics(ctx); err == nil {
		for r, c := range m {
			if c.Packets > 0 {
				resp.Datapath.Counters[datapath.Reason(r).String()] = c.Packets
			}
		}
	} else {
		resp.Datapath.Error = err.Error()
	}
	if ids, err := s.identities(ctx); err == nil {
		resp.Identities = uint32(len(ids))
	}
	for _, h := range a.health.Snapshot() {
		nh := &agentapi.NodeHealth{Node: h.Node, Cluster: h.Cluster, Ip: h.IP.String(), Reachable: h.Reachable,
			LatencyMs: float64(h.Latency.Microseconds()) / 1000, Error: h.Err}
		resp.Health = append(resp.Health, nh)
	}
	sort.Slice(resp.Health, func(i, j int) bool { return resp.Health[i].Node < resp.Health[j].Node })
	resp.RemoteClusters = a.mesh.Status()
	resp.GlobalServices = a.services.GlobalServicesStatus()
	resp.GlobalServiceCount = uint32(a.services.CountGlobal())
	resp.Collection = coll
	resp.Kubernetes = k8s
	for _, e := range a.errs.Snapshot() {
		resp.ComponentErrors = append(resp.ComponentErrors, &agentapi.ComponentError{
			Component: e.Component, Message: e.Message, Time: e.Time.UTC().Format(time.RFC3339), Count: e.Count})
	}
	resp.Masquerading = "off"
	if on, ranges := a.dp.Masquerading(); on {
		resp.Masquerading = "BPF"
		for _, p := range ranges {
			resp.NonMasquerade = append(resp.NonMasquerade, p.String())
		}
	}
	fs := a.flows.Observer().Status()
	resp.Flows = &agentapi.FlowStatus{Enabled: a.cfg.Flows.Enabled, NumFlows: fs.GetNumFlows(), MaxFlows: fs.GetMaxFlows(),
		FlowsPerSecond: fs.GetFlowsPerSecond(), LostFlows: fs.GetLostFlows()}
	return resp, nil
}

func (a *Agent) synced() bool {
	select {
	case <-a.ipc.Synced():
		return true
	default:
		return false
	}
}

func (s *api) ListNodes(ctx context.Context, _ *agentapi.ListNodesRequest) (*agentapi.ListNodesResponse, error) {
	resp := &agentapi.ListNodesResponse{}
	for _, n := range s.a.nodes.List() {
		node := &agentapi.Node{Name: n.Name, Cluster: n.Cluster, BootId: n.BootID, Local: n.Name == s.a.cfg.NodeName && n.Cluster == s.a.cluster.Name}
		if len(n.Underlay) > 0 {
			node.Ipv4 = n.Underlay[0].String()
		}
		if n.HealthIP.IsValid() {
			node.HealthIpv4 = n.HealthIP.String()
		}
		for _, c := range n.PodCIDRs {
			node.PodCidrs = append(node.PodCidrs, c.String())
		}
		resp.Nodes = append(resp.Nodes, node)
	}
	return resp, nil
}

// identities lists the cluster's identities, plus the reserved ones, from
// the identity mirror the agent already watches (no store round trip per
// call, so weft status stays cheap).
func (s *api) identities(ctx context.Context) ([]*agentapi.Identity, error) {
	var out []*agentapi.Identity
	for _, id := range []records.ID{records.IDHost, records.IDWorld, records.IDUnmanaged, records.IDHealth, records.IDRemoteNode} {
		if ls, ok := records.ReservedLabels(id); ok {
			out = append(out, &agentapi.Identity{Id: uint32(id), Labels: endpoints.SortedLabels(ls), Reserved: true})
		}
	}
	select {
	case <-s.a.services.Identities().Synced():
	default:
		return nil, errors.New("the agent has not listed the cluster's identities yet; try again in a moment")
	}
	local := map[records.ID]uint32{}
	for _, ep := range s.a.endpoints.List() {
		local[ep.Identity]++
	}
	mirror := s.a.services.Identities().Snapshot()
	ids := make([]records.Identity, 0, len(mirror))
	for _, ident := range mirror {
		ids = append(ids, ident)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].ID < ids[j].ID })
	for _, ident := range ids {
		out = append(out, &agentapi.Identity{Id: uint32(ident.ID), Labels: endpoints.SortedLabels(ident.Labels), LocalRefs: local[ident.ID]})
	}
	return out, nil
}

func (s *api) ListIdentities(ctx context.Context, _ *agentapi.ListIdentitiesRequest) (*agentapi.ListIdentitiesResponse, error) {
	ids, err := s.identities(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &agentapi.ListIdentitiesResponse{Identities: ids}, nil
}

func (s *api) GetIdentity(ctx context.Context, req *agentapi.GetIdentityRequest) (*agentapi.Identity, error) {
	ids, err := s.identities(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	for _, id := range ids {
		if id.Id == req.Id {
			return id, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "identity %d is not known in cluster %s", req.Id, s.a.cluster.Name)
}

func (s *api) ListIPCache(ctx context.Context, _ *agentapi.ListIPCacheRequest) (*agentapi.ListIPCacheResponse, error) {
	resp := &agentapi.ListIPCacheResponse{}
	for ip, e := range s.a.ipc.Snapshot() {
		e.IP = ip
		resp.Entries = append(resp.Entries, ipcacheEntry(s.a.cluster.Name, e))
	}
	sort.Slice(resp.Entries, func(i, j int) bool { return resp.Entries[i].Prefix < resp.Entries[j].Prefix })
	for _, e := range s.a.mesh.IPCache() { // connected clusters' entries, after the local ones
		resp.Entries = append(resp.Entries, ipcacheEntry(e.Cluster, e.IPCacheEntry))
	}
	return resp, nil
}

func (s *api) ListServices(ctx context.Context, _ *agentapi.ListServicesRequest) (*agentapi.ListServicesResponse, error) {
	return s.a.services.List(), nil
}

func (s *api) DumpBPF(ctx context.Context, req *agentapi.DumpBPFRequest) (*agentapi.Table, error) {
	t, err := dumpBPF(s.a.dp, req.Map)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return t, nil
}

func ipcacheEntry(cluster string, e records.IPCacheEntry) *agentapi.IPCacheEntry {
	out := &agentapi.IPCacheEntry{Prefix: netip.PrefixFrom(e.IP, e.IP.BitLen()).String(), Identity: uint32(e.Identity),
		Namespace: e.Namespace, Pod: e.Pod, Cluster: cluster}
	if e.HostIP.IsValid() {
		out.HostIp = e.HostIP.String()
	}
	if e.GlobalIP.IsValid() {
		out.GlobalIp = e.GlobalIP.String()
	}
	return out
}

// globalIPv4 is the global address of a pod address of cluster cc, or "".
func globalIPv4(cc records.ClusterConfig, ip netip.Addr) string {
	if g, ok := records.GlobalAddr(cc.GlobalCIDR, cc.PodCIDRs, ip); ok {
		return g.String()
	}
	return ""
}

// lastCollection reads the cluster's last garbage collection from the store
// (whoever ran it); nil before the first or when the store does not answer.
// kubernetesSource reads what the cluster's Kubernetes source last wrote;
// nil without one (or when the store does not answer in time).
func (a *Agent) kubernetesSource(ctx context.Context) *agentapi.KubernetesSource {
	ctx, cancel := context.WithTimeout(ctx, statusStoreWait)
	defer cancel()
	kv, err := a.store.Get(ctx, a.keys.KubernetesSource(a.cluster.Name))
	if err != nil {
		return nil
	}
	rec, err := a.keys.DecodeKubernetesSource(kv.Key, kv.Value)
	if err != nil {
		return &agentapi.KubernetesSource{LastError: "unreadable status record: " + err.Error()}
	}
	out := &agentapi.KubernetesSource{Holder: rec.Holder, Time: rec.Time.UTC().Format(time.RFC3339), Kinds: map[string]*agentapi.KubernetesKind{},
		Problems: rec.Problems, ProblemCount: uint32(rec.ProblemCount), LastError: rec.LastError}
	if !rec.LastErrorTime.IsZero() {
		out.LastErrorTime = rec.LastErrorTime.UTC().Format(time.RFC3339)
	}
	for k, v := range rec.Kinds {
		out.Kinds[k] = &agentapi.KubernetesKind{Synced: v.Synced, Objects: uint32(v.Objects)}
	}
	return out
}

func (a *Agent) lastCollection(ctx context.Context) *agentapi.Collection {
	ctx, cancel := context.WithTimeout(ctx, statusStoreWait)
	defer cancel()
	rec, err := gc.Last(ctx, a.store, a.store.Prefix(), a.cluster.Name)
	if err != nil {
		return nil
	}
	out := &agentapi.Collection{By: rec.By, Time: rec.Time.UTC().Format(time.RFC3339), Error: rec.Error}
	if f := rec.Freed; !f.Empty() {
		out.FreedTime = f.Time.UTC().Format(time.RFC3339)
		for _, id := range f.Identities {
			out.FreedIdentities = append(out.FreedIdentities, uint32(id))
		}
		for node, cidrs := range f.CIDRs {
			for _, c := range cidrs {
				out.FreedCidrs = append(out.FreedCidrs, node+" "+c.String())
			}
		}
		slices.Sort(out.FreedCidrs)
	}
	return out
}
