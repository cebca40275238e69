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

// The test service: NodePort weft-connectivity (in the test pods'
// namespace), port 80 → the TCP echo servers of the pods labelled
// app=weft-connectivity.
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
	_, err = agentapi.NewServicesClient(conn).Get(rctx, &agentapi.GetServiceRequest{Namespace: fx.namespace(), Name: "weft-connectivity-probe"})
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
		ip, nodePort, err := fx.applyService(ctx, *cl, serviceSpec{name: serviceName, nodePort: true})
		if err != nil {
			return err
		}
		cl.service = &service{clusterIP: ip, nodePort: nodePort}
		for _, p := range cl.pods {
			cl.service.backends = append(cl.service.backends, p.name)
		}
		for _, n := range cl.nodes {
			if err := fx.waitBackends(ctx, n.name, len(cl.pods)); err != nil {
				return err
			}
		}
		if fx.env != nil && fx.env.Kubernetes {
			if i == 0 {
				fx.skipped = append(fx.skipped, Result{Name: "pod-to-ingress-service", Skipped: noIngressKube})
			}
			continue
		}
		if err := fx.applyIngress(ctx, cl); err != nil {
			return err
		}
		cl.ingress = true
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
					if s.Namespace == fx.namespace() && s.Name == name {
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
			return fmt.Errorf("wait for node %s to load-balance service %s/%s: %s after %v", node, fx.namespace(), name, last, fx.opts.PropagationTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deleteServices removes the test services again.
func (fx *fixture) deleteServices(ctx context.Context) {
	for _, cl := range fx.clusters {
		if cl.ingress {
			if err := fx.deleteIngress(ctx, cl); err != nil {
				fx.opts.Log.Warn("delete the connectivity test ingress", "cluster", cl.name, "err", err)
			}
		}
		err := fx.deleteService(ctx, cl, serviceName)
		if err == nil && len(fx.clusters) > 1 {
			err = fx.deleteService(ctx, cl, globalServiceName)
		}
		if err != nil {
			fx.opts.Log.Warn("delete the connectivity test service", "cluster", cl.name, "err", err)
		}
	}
}

// serviceSpec is a test service: port 80 to the test pods' TCP echo
// servers.
type serviceSpec struct {
	name        string
	nodePort    bool // NodePort, else ClusterIP
	annotations map[string]string
}

// applyService writes svc into cl: as a Kubernetes Service in a
// Kubernetes-mode environment (the apiserver mirrors it), else through the
// agent's Services API. It returns the ClusterIP and the NodePort.
func (fx *fixture) applyService(ctx context.Context, cl cluster, svc serviceSpec) (netip.Addr, uint16, error) {
	if fx.env != nil && fx.env.Kubernetes {
		return fx.applyKubeService(ctx, cl, svc)
	}
	fmt.Fprintf(fx.opts.Progress, "• applying service %s/%s through %s\n", fx.namespace(), svc.name, cl.nodes[0].name)
	typ := "ClusterIP"
	if svc.nodePort {
		typ = "NodePort"
	}
	conn, err := fx.conn(cl.nodes[0].name)
	if err != nil {
		return netip.Addr{}, 0, err
	}
	defer conn.Close()
	resp, err := agentapi.NewServicesClient(conn).Apply(ctx, &agentapi.ApplyServicesRequest{Services: []*agentapi.ServiceSpec{{
		Namespace: fx.namespace(), Name: svc.name, Type: typ,
		Ports:       []*agentapi.ServicePortSpec{{Port: servicePort, TargetPort: tcpPort, Protocol: "TCP"}},
		Selector:    testLabels,
		Annotations: svc.annotations,
	}}})
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("apply test service %s in cluster %s: %w", svc.name, cl.name, err)
	}
	if len(resp.Services) != 1 || len(resp.Services[0].Ports) != 1 {
		return netip.Addr{}, 0, fmt.Errorf("apply test service %s in cluster %s: the agent answered %v", svc.name, cl.name, resp.Services)
	}
	spec := resp.Services[0]
	ip, err := netip.ParseAddr(spec.ClusterIp)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("apply test service %s in cluster %s: ClusterIP %q: %w", svc.name, cl.name, spec.ClusterIp, err)
	}
	return ip, uint16(spec.Ports[0].NodePort), nil
}

// deleteService removes test service name from cl; a missing one is not
// an error.
func (fx *fixture) deleteService(ctx context.Context, cl cluster, name string) error {
	if fx.env != nil && fx.env.Kubernetes {
		return fx.deleteKubeService(ctx, cl, name)
	}
	conn, err := fx.conn(cl.nodes[0].name)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = agentapi.NewServicesClient(conn).Delete(ctx, &agentapi.DeleteServiceRequest{Namespace: fx.namespace(), Name: name})
	return err
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
