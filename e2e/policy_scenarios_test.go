package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func exampleDoc(t *testing.T, name string) string {
	b, err := os.ReadFile("../policy/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// deathstar: only the empire lands, on port 80/TCP (Cilium's L3/L4 example).
func (px *policyFixture) deathstar(t *testing.T) {
	n1 := px.nodes[0].Name
	px.allowed(t, "xwing", px.addr("deathstar", portHTTP))
	px.apply(t, exampleDoc(t, "deathstar.yaml"), "default/deathstar")
	px.allowed(t, "tiefighter", px.addr("deathstar", portHTTP))
	px.denied(t, "xwing", px.addr("deathstar", portHTTP), n1)
	px.denied(t, "tiefighter", px.addr("deathstar", portAlt), n1)
	px.allowed(t, "xwing", px.addr("tiefighter", portHTTP)) // not selected: open

	got := px.weft(t, n1, "", "policy", "get", "default/deathstar")
	if !strings.Contains(got, "default/deathstar "+px.pods["deathstar"].IP) {
		t.Errorf("weft policy get does not show the deathstar endpoint:\n%s", got)
	}
	got = px.weft(t, n1, "", "endpoint", "get", "default/deathstar")
	if !strings.Contains(got, "ingress enforced, egress not enforced") || !strings.Contains(got, "k8s:class=tiefighter") {
		t.Errorf("weft endpoint get does not show the effective policy:\n%s", got)
	}
}

// teamIsolation: team-a accepts only its own namespace; team-b's api
// accepts only team-a's frontend.
func (px *policyFixture) teamIsolation(t *testing.T) {
	n1, n2 := px.nodes[0].Name, px.nodes[1].Name
	px.apply(t, exampleDoc(t, "team-isolation.yaml"), "team-a/isolate-team-a", "team-b/team-a-to-api")
	px.allowed(t, "a-frontend", px.addr("a-db", portHTTP))
	px.denied(t, "b-other", px.addr("a-db", portHTTP), n2)
	px.allowed(t, "a-frontend", px.addr("b-api", portAlt))
	px.denied(t, "a-db", px.addr("b-api", portHTTP), n1)
	px.denied(t, "b-other", px.addr("b-api", portHTTP), n1)
	px.allowed(t, "a-db", px.addr("b-other", portHTTP)) // not selected: open
}

// teamIsolationK8s: the same in Kubernetes NetworkPolicy form, with ports.
func (px *policyFixture) teamIsolationK8s(t *testing.T) {
	n1 := px.nodes[0].Name
	px.apply(t, exampleDoc(t, "team-isolation-k8s.yaml"), "team-a/isolate-team-a", "team-b/team-a-to-api")
	px.allowed(t, "a-db", px.addr("a-frontend", portHTTP))
	px.denied(t, "xwing", px.addr("a-frontend", portHTTP), n1)
	px.allowed(t, "a-frontend", px.addr("b-api", portAlt))
	px.denied(t, "a-frontend", px.addr("b-api", portHTTP), n1)
	px.denied(t, "b-other", px.addr("b-api", portAlt), n1)
}

// defaultDeny: a policy that selects the xwing with an empty ingress rule
// denies everything to it but its own node (allow-localhost), and leaves
// its egress open.
func (px *policyFixture) defaultDeny(t *testing.T) {
	px.apply(t, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: lock-xwing
spec:
  endpointSelector:
    matchLabels:
      class: xwing
  ingress:
  - {}
`, "default/lock-xwing")
	px.denied(t, "tiefighter", px.addr("xwing", portHTTP), px.nodes[1].Name)
	px.denied(t, "deathstar", px.addr("xwing", portAlt), px.nodes[1].Name)
	px.allowed(t, "xwing", px.addr("tiefighter", portHTTP))
	px.allowed(t, "node/"+px.nodes[1].Name, px.addr("xwing", portHTTP))
}

// denyOverridesAllow: the deathstar admits the whole cluster but denies
// tiefighters; the deny wins.
func (px *policyFixture) denyOverridesAllow(t *testing.T) {
	px.apply(t, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: no-tiefighters
spec:
  endpointSelector:
    matchLabels:
      class: deathstar
  ingress:
  - fromEntities:
    - cluster
  ingressDeny:
  - fromEndpoints:
    - matchLabels:
        class: tiefighter
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`, "default/no-tiefighters")
	px.denied(t, "tiefighter", px.addr("deathstar", portHTTP), px.nodes[0].Name)
	px.allowed(t, "tiefighter", px.addr("deathstar", portAlt))
	px.allowed(t, "xwing", px.addr("deathstar", portHTTP))
}

// cidrExcept: a-db may reach 192.168.0.0/24 except 192.168.0.128/25.
func (px *policyFixture) cidrExcept(t *testing.T) {
	px.allowed(t, "a-db", netip.AddrPortFrom(worldExcept, portAlt)) // the world answers
	px.apply(t, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: db-egress
  namespace: team-a
spec:
  endpointSelector:
    matchLabels:
      app: db
  egress:
  - toCIDRSet:
    - cidr: 192.168.0.0/24
      except:
      - 192.168.0.128/25
`, "team-a/db-egress")
	n2 := px.nodes[1].Name
	px.allowed(t, "a-db", netip.AddrPortFrom(worldIn, portAlt))
	px.denied(t, "a-db", netip.AddrPortFrom(worldExcept, portAlt), n2)
	px.denied(t, "a-db", px.addr("b-other", portHTTP), n2)
}

// entitiesWorldHost: a-frontend may reach the world and its own node, not
// the other node or pods.
func (px *policyFixture) entitiesWorldHost(t *testing.T) {
	px.apply(t, `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: frontend-egress
  namespace: team-a
spec:
  endpointSelector:
    matchLabels:
      app: frontend
  egress:
  - toEntities:
    - world
    - host
`, "team-a/frontend-egress")
	n1 := px.nodes[0].Name
	px.allowed(t, "a-frontend", netip.AddrPortFrom(worldIn, portAlt))
	px.allowed(t, "a-frontend", netip.AddrPortFrom(px.nodes[0].Addr(), portAlt))
	px.denied(t, "a-frontend", netip.AddrPortFrom(px.nodes[1].Addr(), portAlt), n1)
	px.denied(t, "a-frontend", px.addr("b-api", portHTTP), n1)
}

// refused: documents the datapath cannot enforce are refused by the CLI
// with an error naming the field, and nothing is stored.
func (px *policyFixture) refused(t *testing.T) {
	n1 := px.nodes[0].Name
	before := px.weft(t, n1, "", "policy", "list")
	for _, tc := range []struct{ doc, want string }{
		{`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: l7
spec:
  endpointSelector:
    matchLabels:
      class: deathstar
  ingress:
  - toPorts:
    - ports:
      - port: "80"
        protocol: UDP
      rules:
        http:
        - method: POST
          path: /v1/request-landing
`, `spec.ingress[0].toPorts[0].ports[0].protocol: "UDP" cannot carry HTTP, so it takes no rules.http; accepted with L7 HTTP rules are TCP and ANY`},
		{exampleDoc(t, "deathstar.yaml") + `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: named
spec:
  podSelector: {}
  ingress:
  - ports:
    - port: http
`, `document 2 (NetworkPolicy default/named): spec.ingress[0].ports[0].port: named port "http": named ports are not supported yet`},
	} {
		out, err := px.weftErr(n1, tc.doc, "policy", "import", "-f", "-")
		if err == nil || !strings.Contains(out, tc.want) || !strings.Contains(out, "nothing was stored") {
			t.Errorf("weft policy import: got %v:\n%s\nwant an error with %q", err, out, tc.want)
		}
	}
	if after := px.weft(t, n1, "", "policy", "list"); after != before {
		t.Errorf("refused imports changed the policies:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// survivesRestart: after the agent of the deathstar's node is killed and
// restarted, the policy is enforced as before.
func (px *policyFixture) survivesRestart(t *testing.T) {
	n1 := px.nodes[0].Name
	px.apply(t, exampleDoc(t, "deathstar.yaml"), "default/deathstar")
	px.denied(t, "xwing", px.addr("deathstar", portHTTP), n1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := px.e.StopAgent(ctx, n1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := px.e.StartAgent(ctx, n1); err != nil {
		t.Fatal(err)
	}
	if err := px.e.WaitAgent(ctx, n1, time.Minute); err != nil {
		t.Fatal(err)
	}
	px.flows[n1] = startFlows(t, px.e, n1)
	eventually(t, 20*time.Second, "deathstar shows its policy after the restart", func() error {
		if ep := px.endpoint("deathstar"); ep.GetPolicy() == nil || !ep.GetPolicy().GetIngressEnforced() {
			return fmt.Errorf("policy %v", ep.GetPolicy())
		}
		return nil
	})
	px.allowed(t, "tiefighter", px.addr("deathstar", portHTTP))
	px.denied(t, "xwing", px.addr("deathstar", portHTTP), n1)
}
