package connectivity

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// Ports of the echo servers the test starts in pods and nodes.
const (
	tcpPort    = 7070
	udpPort    = 7071
	httpPort   = 8080 // pods only, for the L7 tests
	healthPort = 4240 // the agent's default --health-port
)

// testLabels mark the pods this package creates.
var testLabels = map[string]string{"app": "weft-connectivity"}

// endpoint is somewhere traffic starts or ends: a pod or a node.
type endpoint struct {
	kind   string // pod or node
	name   string
	node   string
	ip     netip.Addr
	target testenv.Target
	// global is a pod's mesh-wide address when its cluster has global
	// addressing (docs/clustermesh.md, "Global addressing"): other
	// clusters reach the pod by it, and the pod's packets reach them
	// with it as source.
	global netip.Addr
}

// addrFor is the address from sees to at: to's global address when the
// two are nodes or pods of different clusters and to has one, else its
// own address.
func (fx *fixture) addrFor(from, to endpoint) netip.Addr {
	if a, b := fx.clusterOf(from.node), fx.clusterOf(to.node); to.global.IsValid() && a != "" && b != "" && a != b {
		return to.global
	}
	return to.ip
}

// clusterOf is the cluster of node ("" for none, e.g. the outside server).
func (fx *fixture) clusterOf(node string) string {
	n, err := fx.node(node)
	if err != nil {
		return ""
	}
	return n.cluster
}

func (p endpoint) String() string {
	switch p.kind {
	case "node":
		return fmt.Sprintf("node %s (%s)", p.name, p.ip)
	case "outside":
		return fmt.Sprintf("the outside server %s (in the underlay namespace)", p.ip)

	}
	return fmt.Sprintf("pod %s (%s, on node %s)", p.name, p.ip, p.node)
}

// cluster groups the endpoints of one cluster.
type cluster struct {
	name  string
	nodes []endpoint
	pods  []endpoint // pods[i] runs on nodes[i]; pods[len(nodes)] is a second pod on nodes[0]
	// protected is selected by the test policy (on the last node); other
	// has labels the policy does not allow (on nodes[0]). Both exist only
	// when the agents serve the Policy API.
	protected, other *endpoint
	// service is the test service, when the agents serve the Services API.
	service *service
	// global is the global test service of a mesh (several clusters).
	global *service
	// ingress: the test Ingress is served (ingress.go).
	ingress bool
}

// allPods are the test pods of the cluster, policy pods included.
func (cl cluster) allPods() []endpoint {
	out := slices.Clone(cl.pods)
	for _, p := range []*endpoint{cl.protected, cl.other} {
		if p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// fixture is the prepared environment: pods, servers, timeouts.
type fixture struct {
	drv      driver
	env      *testenv.Env // the testenv environment; nil on standalone hosts
	opts     Options
	clusters []cluster
	servers  []func()
	podMTU   map[string]int                  // by pod name
	outside  *endpoint                       // the world's server (setupOutside)
	mesh     bool                            // several clusters
	policy   bool                            // the agents serve the Policy API
	services bool                            // the agents serve the Services API
	kube     map[string]kubernetes.Interface // by cluster, in a Kubernetes-mode environment
	// skipped are parts of tests this driver cannot run, with the reason.
	skipped []Result
}

func podName(node, suffix string) string { return "cx-" + node + "-" + suffix }

// setup creates the missing test pods, starts echo servers in every pod and
// node, and waits until every agent knows every test pod. fx has its
// driver, env (testenv only) and opts.
func setup(ctx context.Context, fx *fixture) (*fixture, error) {
	fx.podMTU = map[string]int{}
	fx.policy = fx.policyAPI(ctx)
	fx.services = fx.servicesAPI(ctx)
	var names []string
	byCluster := map[string][]nodeInfo{}
	for _, n := range fx.drv.nodes() {
		if _, ok := byCluster[n.cluster]; !ok {
			names = append(names, n.cluster)
		}
		byCluster[n.cluster] = append(byCluster[n.cluster], n)
	}
	fx.mesh = len(names) > 1
	for _, c := range names {
		var cl cluster
		nodes := byCluster[c]
		for i, n := range append(slices.Clone(nodes), nodes[0]) {
			suffix := "a"
			if i == len(nodes) {
				suffix = "b"
			}
			p, err := fx.ensurePod(ctx, podName(n.name, suffix), n.name)
			if err != nil {
				return nil, err
			}
			cl.pods = append(cl.pods, p)
		}
		if fx.policy {
			if err := fx.ensurePolicyPods(ctx, &cl, nodes); err != nil {
				return nil, err
			}
		}
		for _, n := range nodes {
			ep := endpoint{kind: "node", name: n.name, node: n.name, ip: n.ip}
			if fx.env != nil {
				t, err := fx.env.Target("node/" + n.name)
				if err != nil {
					return nil, err
				}
				ep.target = t
			}
			cl.nodes = append(cl.nodes, ep)
		}
		cl.name = c
		fx.clusters = append(fx.clusters, cl)
	}
	for _, cl := range fx.clusters {
		for _, ep := range append(cl.allPods(), cl.nodes...) {
			if err := fx.serve(ctx, ep, ep.name); err != nil {
				fx.close(ctx)
				return nil, err
			}
		}
	}
	if err := fx.setupOutside(ctx); err != nil {
		fx.close(ctx)
		return nil, err
	}
	if err := fx.waitPropagated(ctx); err != nil {
		fx.close(ctx)
		return nil, err
	}
	fx.waitRemote(ctx)
	if fx.policy {
		fx.deletePolicies(ctx) // left by an interrupted run, or an earlier version's
	}
	if fx.services {
		if err := fx.applyServices(ctx); err != nil {
			fx.close(ctx)
			return nil, err
		}
		if err := fx.applyGlobalService(ctx); err != nil {
			fx.close(ctx)
			return nil, err
		}
	}
	return fx, nil
}

// globalAddr is p's global address as its agent knows it (none without
// global addressing).
func (fx *fixture) globalAddr(ctx context.Context, p endpoint) (netip.Addr, error) {
	ep, err := fx.endpoint(ctx, p)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("read the global address of pod %s: %w", p.name, err)
	}
	if g := ep.GetGlobalIpv4(); g != "" {
		return netip.ParseAddr(g)
	}
	return netip.Addr{}, nil
}

// ensurePod reuses a test pod from an earlier run or creates it.
func (fx *fixture) ensurePod(ctx context.Context, name, node string) (endpoint, error) {
	return fx.ensurePodWith(ctx, name, node, testLabels)
}

func (fx *fixture) ensurePodWith(ctx context.Context, name, node string, labels map[string]string) (endpoint, error) {
	ep, mtu, err := fx.drv.ensurePod(ctx, name, node, labels)
	if err != nil {
		return endpoint{}, err
	}
	fx.podMTU[name] = mtu
	if fx.mesh {
		if ep.global, err = fx.globalAddr(ctx, ep); err != nil {
			return endpoint{}, err
		}
	}
	return ep, nil
}

// waitPropagated waits until each agent's ipcache holds every test pod of
// its cluster, so scenarios do not race the store's watch.
func (fx *fixture) waitPropagated(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	for _, cl := range fx.clusters {
		for _, n := range cl.nodes {
			var missing []string
			for {
				var err error
				missing, err = fx.missingOn(ctx, n.name, cl.allPods())
				if err == nil && len(missing) == 0 {
					break
				}
				if ctx.Err() != nil {
					return fmt.Errorf("wait for test pods to reach node %s's ipcache: still missing %v after %v (last error: %v)",
						n.name, missing, fx.opts.PropagationTimeout, err)
				}
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

func (fx *fixture) missingOn(ctx context.Context, node string, pods []endpoint) ([]string, error) {
	a, closeFn, err := fx.agent(ctx, node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := a.ListIPCache(rctx, &agentapi.ListIPCacheRequest{})
	if err != nil {
		return nil, err
	}
	have := map[netip.Addr]bool{}
	for _, e := range resp.Entries {
		if p, err := netip.ParsePrefix(e.Prefix); err == nil && p.Bits() == 32 {
			have[p.Addr()] = true
		} else if a, err := netip.ParseAddr(e.Prefix); err == nil {
			have[a] = true
		}
	}
	var missing []string
	for _, p := range pods {
		if !have[p.ip] {
			missing = append(missing, p.name+"="+p.ip.String())
		}
	}
	return missing, nil
}

// close stops the servers and, if asked, deletes the test pods.
func (fx *fixture) close(ctx context.Context) {
	for _, stop := range fx.servers {
		stop()
	}
	fx.servers = nil
	if fx.policy {
		fx.deletePolicies(ctx)
	}
	if fx.services {
		fx.deleteServices(ctx)
	}
	if !fx.opts.DeletePods {
		return
	}
	var errs []error
	for _, cl := range fx.clusters {
		for _, p := range cl.allPods() {
			errs = append(errs, fx.drv.deletePod(ctx, p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fx.opts.Log.Warn("delete connectivity test pods", "err", err)
	}
}
