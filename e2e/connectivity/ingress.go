package connectivity

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/api/agentapi"
)

// The Ingress test (cilium-cli's pod-to-ingress-service): a Service of
// the test pods' HTTP echo servers and an Ingress of class weft routing
// ingressPath to it, which every node serves on its address, port 80
// (docs/ingress.md).
const (
	ingressName        = "weft-connectivity"
	ingressServiceName = "weft-connectivity-http"
	ingressPath        = "/weft-connectivity"
)

// noIngressKube is why the Ingress test does not run in Kubernetes mode.
const noIngressKube = "in Kubernetes mode Ingresses come from the apiserver (weft-apiserver --k8s-ingresses); e2e.TestIngressKubernetes covers them, this test applies them through the agents' Ingresses API"

// applyIngress writes the HTTP service and the Ingress into cl through
// the agent and waits until its first node has the service's backends.
func (fx *fixture) applyIngress(ctx context.Context, cl *cluster) error {
	fmt.Fprintf(fx.opts.Progress, "• applying ingress %s/%s through %s\n", fx.namespace(), ingressName, cl.nodes[0].name)
	conn, err := fx.conn(cl.nodes[0].name)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = agentapi.NewServicesClient(conn).Apply(ctx, &agentapi.ApplyServicesRequest{Services: []*agentapi.ServiceSpec{{
		Namespace: fx.namespace(), Name: ingressServiceName, Type: "ClusterIP",
		Ports:    []*agentapi.ServicePortSpec{{Port: httpPort, TargetPort: httpPort, Protocol: "TCP"}},
		Selector: testLabels,
	}}})
	if err != nil {
		return fmt.Errorf("apply test service %s in cluster %s: %w", ingressServiceName, cl.name, err)
	}
	doc := fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: %s
  namespace: %s
spec:
  ingressClassName: weft
  rules:
  - http:
      paths:
      - path: %s
        pathType: Prefix
        backend:
          service:
            name: %s
            port:
              number: %d
`, ingressName, fx.namespace(), ingressPath, ingressServiceName, httpPort)
	if _, err := agentapi.NewIngressesClient(conn).Apply(ctx, &agentapi.ApplyIngressesRequest{Documents: []byte(doc)}); err != nil {
		return fmt.Errorf("apply test ingress %s in cluster %s: %w", ingressName, cl.name, err)
	}
	for _, n := range cl.nodes {
		if err := fx.waitServiceBackends(ctx, n.name, ingressServiceName, len(cl.pods)); err != nil {
			return err
		}
	}
	return nil
}

// deleteIngress removes the Ingress and its service from cl.
func (fx *fixture) deleteIngress(ctx context.Context, cl cluster) error {
	conn, err := fx.conn(cl.nodes[0].name)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := agentapi.NewIngressesClient(conn).Delete(ctx, &agentapi.DeleteIngressRequest{Namespace: fx.namespace(), Name: ingressName}); err != nil {
		return err
	}
	return fx.deleteService(ctx, cl, ingressServiceName)
}

// ingressScenarios: from a pod, every node's address routes the
// Ingress's path to one of the test pods, and another path gets 404.
func (fx *fixture) ingressScenarios(cl cluster, add func(string, func(context.Context) error)) {
	if !cl.ingress {
		return
	}
	a := cl.pods[0]
	for _, n := range cl.nodes {
		add("pod-to-ingress-service/http/"+a.name+"->"+n.name, func(ctx context.Context) error {
			return fx.probeIngress(ctx, cl, a, n)
		})
	}
}

// probeIngress sends GET ingressPath/probe and GET /not-routed from src to
// node's Ingress port.
func (fx *fixture) probeIngress(ctx context.Context, cl cluster, src, node endpoint) error {
	c := fx.httpClient(src)
	base := "http://" + netip.AddrPortFrom(node.ip, 80).String()
	var names []string
	for _, p := range cl.pods {
		names = append(names, p.name)
	}
	target := ingressPath + "/probe"
	code, body, err := httpGet(ctx, c, base+target)
	if err != nil {
		return fmt.Errorf("GET %s%s from %s through the Ingress of node %s: %w", base, target, src, node.name, err)
	}
	answered, ok := strings.CutPrefix(strings.TrimSpace(body), "GET "+target+" at ")
	if code != http.StatusOK || !ok || !slices.Contains(names, answered) {
		return fmt.Errorf("GET %s%s from %s: %d %q, expected 200 from one of the test pods %v (the Ingress routes %s to service %s)",
			base, target, src, code, body, names, ingressPath, ingressServiceName)
	}
	if code, body, err := httpGet(ctx, c, base+"/not-routed"); err != nil || code != http.StatusNotFound {
		return fmt.Errorf("GET %s/not-routed from %s: %d %q %v, expected 404 from the Ingress (no route)", base, src, code, body, err)
	}
	return nil
}

func httpGet(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
