package connectivity

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

// globalServiceName is the service applied in every cluster of a mesh with
// service.cilium.io/global: its backends are the test pods of all clusters.
const globalServiceName = "weft-connectivity-global"

// applyGlobalService writes the global test service into every cluster and
// waits until the first node of each cluster load-balances over every
// cluster's pods. It sets cl.global for each cluster.
func (fx *fixture) applyGlobalService(ctx context.Context) error {
	if len(fx.clusters) < 2 {
		return nil
	}
	total := 0
	for _, cl := range fx.clusters {
		total += len(cl.pods)
	}
	for i := range fx.clusters {
		cl := &fx.clusters[i]
		ip, _, err := fx.applyService(ctx, *cl, serviceSpec{name: globalServiceName, annotations: map[string]string{"service.cilium.io/global": "true"}})
		if err != nil {
			return err
		}
		cl.global = &service{clusterIP: ip}
	}
	for i := range fx.clusters {
		cl := &fx.clusters[i]
		for _, other := range fx.clusters {
			for _, p := range other.pods {
				cl.global.backends = append(cl.global.backends, p.name)
			}
		}
		if err := fx.waitServiceBackends(ctx, cl.nodes[0].name, globalServiceName, total); err != nil {
			return err
		}
	}
	return nil
}

// globalScenarios connect, from a pod of every cluster, to its own
// cluster's ClusterIP of the global service until backends of every
// cluster have answered.
func (fx *fixture) globalScenarios() []Scenario {
	var out []Scenario
	for _, cl := range fx.clusters {
		if cl.global == nil {
			continue
		}
		src, svc := cl.pods[0], cl.global
		addr := netip.AddrPortFrom(svc.clusterIP, servicePort)
		out = append(out, Scenario{Name: "global-service/tcp/" + src.name, Run: func(ctx context.Context) error {
			return fx.probeGlobal(ctx, src, addr, svc)
		}})
	}
	return out
}

// probeGlobal connects from src to addr until every cluster's backends
// have answered at least once (a pod name carries its cluster: cx-<cluster>-…).
func (fx *fixture) probeGlobal(ctx context.Context, src endpoint, addr netip.AddrPort, svc *service) error {
	want := map[string]bool{}
	for _, cl := range fx.clusters {
		want[cl.name] = false
	}
	tries := 8 * len(svc.backends)
	for range tries {
		server, err := fx.greeting(ctx, src, addr)
		if err != nil {
			return fmt.Errorf("TCP connection from %s to global service %s %s: %v", src, globalServiceName, addr, err)
		}
		for cl := range want {
			if strings.HasPrefix(server, "cx-"+cl+"-") {
				want[cl] = true
			}
		}
		if !containsFalse(want) {
			return nil
		}
	}
	return fmt.Errorf("TCP connections from %s to global service %s %s: after %d connections, backends answered per cluster: %v (false: no backend of that cluster was reached; is the service global in every cluster and the mesh synced?)",
		src, globalServiceName, addr, tries, want)
}

func containsFalse(m map[string]bool) bool {
	for _, v := range m {
		if !v {
			return true
		}
	}
	return false
}

// greeting connects from src to addr and returns the answering server's name.
func (fx *fixture) greeting(ctx context.Context, src endpoint, addr netip.AddrPort) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout)
	defer cancel()
	out, err := fx.drv.firstLine(cctx, src, addr)
	if err != nil {
		return "", err
	}
	_, server, ok := parseGreeting(out)
	if !ok {
		return "", fmt.Errorf("unexpected answer %q", out)
	}
	return server, nil
}
