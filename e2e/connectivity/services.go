package connectivity

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// The test service: NodePort default/weft-connectivity, port 80 → the TCP
// echo servers of the pods labelled app=weft-connectivity.
const (
	serviceName = "weft-connectivity"
	servicePort = 80
)

// service is the test service of one cluster as applied.
type service struct {
	clusterIP netip.Addr
	nodePort  uint16
	backends  []string // pod names
}

// servicesAPI reports whether the agents serve the Services API.
func (fx *fixture) servicesAPI(ctx context.Context) bool {
	if len(fx.drv.nodes()) == 0 {
		return false
	}
	conn, err := fx.conn(fx.drv.nodes()[0].name)
	if err != nil {
		return false
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = agentapi.NewServicesClient(conn).Get(rctx, &agentapi.GetServiceRequest{Namespace: policyNamespace, Name: "weft-connectivity-probe"})
	switch status.Code(err) {
	case codes.OK, codes.NotFound:
		return true
	case codes.Unimplemented:
		fmt.Fprintln(fx.opts.Progress, "• service scenarios skipped: the agents do not serve the Services API yet")
	}
	return false
}

// applyServices writes the test service into every cluster and waits until
// every node of the cluster has all its backends.
func (fx *fixture) applyServices(ctx context.Context) error {
	for i := range fx.clusters {
		cl := &fx.clusters[i]
		fmt.Fprintf(fx.opts.Progress, "• applying service %s/%s through %s\n", policyNamespace, serviceName, cl.nodes[0].name)
		conn, err := fx.conn(cl.nodes[0].name)
		if err != nil {
			return err
		}
		resp, err := agentapi.NewServicesClient(conn).Apply(ctx, &agentapi.ApplyServicesRequest{Services: []*agentapi.ServiceSpec{{
			Namespace: policyNamespace, Name: serviceName, Type: "NodePort",
			Ports:    []*agentapi.ServicePortSpec{{Port: servicePort, TargetPort: tcpPort, Protocol: "TCP"}},
			Selector: testLabels,
		}}})
		conn.Close()
		if err != nil {
			return fmt.Errorf("apply the connectivity test service: %w", err)
		}
		if len(resp.Services) != 1 || len(resp.Services[0].Ports) != 1 {
			return fmt.Errorf("apply the connectivity test service: the agent answered %v", resp.Services)
		}
		spec := resp.Services[0]
		ip, err := netip.ParseAddr(spec.ClusterIp)
		if err != nil {
			return fmt.Errorf("apply the connectivity test service: ClusterIP %q: %w", spec.ClusterIp, err)
		}
		cl.service = &service{clusterIP: ip, nodePort: uint16(spec.Ports[0].NodePort)}
		for _, p := range cl.pods {
			cl.service.backends = append(cl.service.backends, p.name)
		}
		for _, n := range cl.nodes {
			if err := fx.waitBackends(ctx, n.name, len(cl.pods)); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitBackends waits until node lists the test service with want ready
// backends.
func (fx *fixture) waitBackends(ctx context.Context, node string, want int) error {
	return fx.waitServiceBackends(ctx, node, serviceName, want)
}

// waitServiceBackends waits until node lists service name with want ready
// backends.
func (fx *fixture) waitServiceBackends(ctx context.Context, node, name string, want int) error {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	var last string
	for {
		a, closeFn, err := fx.agent(ctx, node)
		if err == nil {
			resp, lerr := a.ListServices(ctx, &agentapi.ListServicesRequest{})
			closeFn()
			err = lerr
			if err == nil {
				last = "not listed"
				for _, s := range resp.Services {
					if s.Namespace == policyNamespace && s.Name == name {
						ready := 0
						for _, b := range s.Backends {
							if b.Ready {
								ready++
							}
						}
						if ready >= want {
							return nil
						}
						last = fmt.Sprintf("%d of %d backends ready", ready, want)
					}
				}
			}
		}
		if err != nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node %s to load-balance service %s/%s: %s after %v", node, policyNamespace, name, last, fx.opts.PropagationTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteServices removes the test service again.
func (fx *fixture) deleteServices(ctx context.Context) {
	for _, cl := range fx.clusters {
		conn, err := fx.conn(cl.nodes[0].name)
		if err == nil {
			_, err = agentapi.NewServicesClient(conn).Delete(ctx, &agentapi.DeleteServiceRequest{Namespace: policyNamespace, Name: serviceName})
			if err == nil && len(fx.clusters) > 1 {
				_, err = agentapi.NewServicesClient(conn).Delete(ctx, &agentapi.DeleteServiceRequest{Namespace: policyNamespace, Name: globalServiceName})
			}
			conn.Close()
		}
		if err != nil {
			fx.opts.Log.Warn("delete the connectivity test service", "cluster", cl.name, "err", err)
		}
	}
}

// probeService connects from src (a process in its node's cgroup, so the
// socket load balancer applies) to addr up to 4×backends times and
// expects every answer from a backend, and answers from at least two
// backends when there are several.
func (fx *fixture) probeService(ctx context.Context, src endpoint, addr netip.AddrPort, what string, svc *service) error {
	what = fmt.Sprintf("TCP connections from %s to %s %s", src, what, addr)
	seen := map[string]int{}
	for range 4 * len(svc.backends) {
		cctx, cancel := context.WithTimeout(ctx, fx.opts.Timeout)
		out, err := fx.drv.firstLine(cctx, src, addr)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: a connection failed after %d succeeded: %v", what, len(seen), err)
		}
		_, server, ok := parseGreeting(out)
		if !ok || !slices.Contains(svc.backends, server) {
			return fmt.Errorf("%s: answered by %q, expected one of the backends %v", what, out, svc.backends)
		}
		seen[server]++
		if len(seen) >= 2 {
			return nil
		}
	}
	if len(svc.backends) > 1 {
		return fmt.Errorf("%s: all %d connections went to %v, expected them spread over the backends %v", what, 4*len(svc.backends), seen, svc.backends)
	}
	return nil
}

// serviceScenarios check the test service in cluster cl.
func (fx *fixture) serviceScenarios(cl cluster, add func(string, func(context.Context) error)) {
	svc := cl.service
	if svc == nil {
		return
	}
	a := cl.pods[0]
	cip := netip.AddrPortFrom(svc.clusterIP, servicePort)
	add("no-policies/pod-to-service/clusterip/tcp/"+a.name, func(ctx context.Context) error {
		return fx.probeService(ctx, a, cip, "service "+serviceName+" ClusterIP", svc)
	})
	host := cl.nodes[len(cl.nodes)-1]
	add("no-policies/host-to-service/clusterip/tcp/"+host.name, func(ctx context.Context) error {
		return fx.probeService(ctx, host, cip, "service "+serviceName+" ClusterIP", svc)
	})
	if len(cl.nodes) > 1 && svc.nodePort != 0 {
		src, dst := cl.nodes[1], cl.nodes[0]
		np := netip.AddrPortFrom(dst.ip, svc.nodePort)
		add("no-policies-extra/node-to-remote-nodeport/tcp/"+src.name+"->"+dst.name, func(ctx context.Context) error {
			return fx.probeService(ctx, src, np, "service "+serviceName+" NodePort on node "+dst.name, svc)
		})
	}
}
