package connectivity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// The test policy: pods labelled app=weft-connectivity-protected accept
// only TCP 7070 from pods labelled app=weft-connectivity.
const (
	policyName      = "weft-connectivity"
	policyNamespace = "default"
	protectedApp    = "weft-connectivity-protected"
	otherApp        = "weft-connectivity-other"
)

var policyDoc = fmt.Sprintf(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: %s
  namespace: %s
spec:
  endpointSelector:
    matchLabels:
      app: %s
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: %s
    toPorts:
    - ports:
      - port: "%d"
        protocol: TCP
`, policyName, policyNamespace, protectedApp, testLabels["app"], tcpPort)

// policyAPI reports whether the agents serve the Policy API; the policy
// scenarios run only then.
func (fx *fixture) policyAPI(ctx context.Context) bool {
	if len(fx.env.Nodes) == 0 {
		return false
	}
	conn, err := fx.env.Conn(fx.env.Nodes[0].Name)
	if err != nil {
		return false
	}
	defer conn.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = agentapi.NewPolicyClient(conn).List(rctx, &agentapi.ListPoliciesRequest{})
	if status.Code(err) == codes.Unimplemented {
		fmt.Fprintln(fx.opts.Progress, "• policy scenarios skipped: the agents do not serve the Policy API yet")
		return false
	}
	return err == nil
}

// ensurePolicyPods creates the protected pod on the cluster's last node
// and the not-allowed pod on its first.
func (fx *fixture) ensurePolicyPods(ctx context.Context, cl *cluster, nodes []testenv.Node) error {
	last := nodes[len(nodes)-1].Name
	p, err := fx.ensurePodWith(ctx, podName(last, "p"), last, map[string]string{"app": protectedApp})
	if err != nil {
		return err
	}
	o, err := fx.ensurePodWith(ctx, podName(nodes[0].Name, "x"), nodes[0].Name, map[string]string{"app": otherApp})
	if err != nil {
		return err
	}
	cl.protected, cl.other = &p, &o
	return nil
}

// importPolicies imports the test policy into every cluster's store and
// waits until the protected pod's node enforces it.
func (fx *fixture) importPolicies(ctx context.Context) error {
	for _, cl := range fx.clusters {
		fmt.Fprintf(fx.opts.Progress, "• importing policy %s/%s through %s\n", policyNamespace, policyName, cl.nodes[0].name)
		err := fx.withPolicy(ctx, cl.nodes[0].name, func(pc agentapi.PolicyClient) error {
			resp, err := pc.Import(ctx, &agentapi.ImportPolicyRequest{Documents: []byte(policyDoc), Source: "weft-connectivity"})
			if err != nil {
				return err
			}
			if !resp.Stored {
				var errs []string
				for _, d := range resp.Documents {
					if d.Error != "" {
						errs = append(errs, d.Error)
					}
				}
				return errors.New(strings.Join(errs, "; "))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("import the connectivity test policy: %w", err)
		}
		if err := fx.waitEnforced(ctx, *cl.protected); err != nil {
			return err
		}
	}
	return nil
}

// waitEnforced waits until the agent of p's node enforces ingress policy
// on p.
func (fx *fixture) waitEnforced(ctx context.Context, p endpoint) error {
	ctx, cancel := context.WithTimeout(ctx, fx.opts.PropagationTimeout)
	defer cancel()
	for {
		ep, err := fx.endpoint(ctx, p)
		if err == nil && ep.Policy != nil && ep.Policy.IngressEnforced {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for node %s to enforce policy %s/%s on pod %s: not enforced after %v (last error: %v)",
				p.node, policyNamespace, policyName, p.name, fx.opts.PropagationTimeout, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (fx *fixture) endpoint(ctx context.Context, p endpoint) (*agentapi.Endpoint, error) {
	a, closeFn, err := fx.env.Agent(ctx, p.node)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return a.GetEndpoint(rctx, &agentapi.GetEndpointRequest{Ip: p.ip.String()})
}

func (fx *fixture) withPolicy(ctx context.Context, node string, fn func(agentapi.PolicyClient) error) error {
	conn, err := fx.env.Conn(node)
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(agentapi.NewPolicyClient(conn))
}

// deletePolicies removes the test policy again.
func (fx *fixture) deletePolicies(ctx context.Context) {
	for _, cl := range fx.clusters {
		err := fx.withPolicy(ctx, cl.nodes[0].name, func(pc agentapi.PolicyClient) error {
			_, err := pc.Delete(ctx, &agentapi.DeletePolicyRequest{Namespace: policyNamespace, Name: policyName})
			return err
		})
		if err != nil {
			fx.opts.Log.Warn("delete the connectivity test policy", "cluster", cl.name, "err", err)
		}
	}
}

// expectDropped turns a probe that should fail into a check: success of
// the probe is the failure, explained with the policy.
func (fx *fixture) expectDropped(what string, probe func() error) error {
	if err := probe(); err == nil {
		return fmt.Errorf("%s got through, expected it dropped: policy %s/%s lets only app=%s reach app=%s, on TCP %d",
			what, policyNamespace, policyName, testLabels["app"], protectedApp, tcpPort)
	}
	return nil
}

// policyScenarios check the test policy in cluster cl.
func (fx *fixture) policyScenarios(cl cluster, add func(string, func(context.Context) error)) {
	if cl.protected == nil {
		return
	}
	a, p, x := cl.pods[0], *cl.protected, *cl.other
	short := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, time.Second)
	}
	add("policy/ingress-allowed/tcp/"+a.name+"->"+p.name, func(ctx context.Context) error {
		return fx.probeTCP(ctx, a, p, smallPayload, true)
	})
	add("policy/ingress-denied-label/tcp/"+x.name+"->"+p.name, func(ctx context.Context) error {
		ctx, cancel := short(ctx)
		defer cancel()
		return fx.expectDropped(fmt.Sprintf("TCP connection from %s (app=%s) to %s port %d", x, otherApp, p, tcpPort),
			func() error { return fx.probeTCP(ctx, x, p, smallPayload, false) })
	})
	add("policy/ingress-denied-port/udp/"+a.name+"->"+p.name, func(ctx context.Context) error {
		return fx.expectDropped(fmt.Sprintf("UDP datagram from %s to %s port %d", a, p, udpPort),
			func() error { return fx.probeUDP(ctx, a, p, smallPayload) })
	})
	add("policy/unselected-pod-open/tcp/"+x.name+"->"+a.name, func(ctx context.Context) error {
		return fx.probeTCP(ctx, x, a, smallPayload, true)
	})
}
