package connectivity

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// Roles of the test pods in the policy tests, as cilium-cli names them:
// the client (app=weft-connectivity, cx-<first node>-a, also the
// second pod on the first node and one pod on every other node), client2
// (app=weft-connectivity-other, cx-<first node>-x) and echo
// (app=weft-connectivity-protected, cx-<last node>-p).
const (
	clientSel  = "matchLabels: {app: weft-connectivity}"
	client2Sel = "matchLabels: {app: " + otherApp + "}"
	echoSel    = "matchLabels: {app: " + protectedApp + "}"
	allTestSel = "matchExpressions: [{key: app, operator: In, values: [weft-connectivity, " + otherApp + ", " + protectedApp + "]}]"
)

// direction of enforcement a policy test waits for.
type direction int

const (
	ingress direction = 1 << iota
	egress
)

// policyTest is one test of the catalogue that runs with policies in
// force: they are imported (into every cluster) before its scenarios and
// deleted after them.
type policyTest struct {
	name string
	// what the test proves, for --list and docs/connectivity.md.
	what string
	// docs are the policy documents (YAML, namespace default).
	docs string
	// enforce says which test pods must enforce which directions before
	// the scenarios start: by role (client, client2, echo, all).
	enforce map[string]direction
	// scenarios of one cluster; names are relative to the test.
	scenarios func(fx *fixture, cl cluster, add addFunc)
	// multiCluster: runs only in an environment of several clusters.
	multiCluster bool
	// outside: needs the outside server (testenv only).
	outside bool
}

// addFunc adds a scenario of a test by name.
type addFunc func(name string, run func(context.Context) error)

// skippedTest is a test of cilium-cli's catalogue that cannot run against
// Weft (yet), listed with the reason rather than left out silently.
type skippedTest struct{ name, reason string }

// cnp is a CiliumNetworkPolicy of the catalogue. It names no namespace:
// it is imported into the test pods' (fixture.namespace).
func cnp(name, spec string) string {
	return fmt.Sprintf("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: %s\nspec:\n%s", name, indent(spec, "  "))
}

// knp is a Kubernetes NetworkPolicy of the catalogue, imported as cnp.
func knp(name, spec string) string {
	return fmt.Sprintf("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: %s\nspec:\n%s", name, indent(spec, "  "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// allowedTCP, deniedTCP and deniedUDP are the policy tests' scenario
// bodies: an exchange that must succeed, or must not, and (with
// --flow-validation) the flow the datapath must have recorded for it.
func (fx *fixture) allowedTCP(src, dst endpoint) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		if err := fx.probeTCP(ctx, src, dst, smallPayload, src.kind == "pod" && dst.kind == "pod"); err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: tcpPort, verdict: agentapi.Verdict_FORWARDED})
	}
}

// allowedWorld is a connection to the outside server that must succeed,
// masqueraded to the client's node.
func (fx *fixture) allowedWorld(src endpoint) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		if err := fx.probeWorld(ctx, src); err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: *fx.outside, port: tcpPort, verdict: agentapi.Verdict_FORWARDED})
	}
}

func (fx *fixture) deniedTCP(test string, src, dst endpoint) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		err := fx.expectDenied(test, fmt.Sprintf("TCP connection from %s to %s port %d", src, dst, tcpPort),
			func() error { return fx.probeTCP(pctx, src, dst, smallPayload, false) })
		if err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: tcpPort, verdict: agentapi.Verdict_DROPPED, reason: "policy denied"})
	}
}

func (fx *fixture) deniedUDP(test string, src, dst endpoint) func(context.Context) error {
	return func(ctx context.Context) error {
		start := time.Now()
		err := fx.expectDenied(test, fmt.Sprintf("UDP datagram from %s to %s port %d", src, dst, udpPort),
			func() error { return fx.probeUDP(ctx, src, dst, smallPayload) })
		if err != nil {
			return err
		}
		return fx.validateFlows(ctx, start, expectedFlow{src: src, dst: dst, port: udpPort, verdict: agentapi.Verdict_DROPPED, reason: "policy denied"})
	}
}

// expectDenied turns a probe that should fail into a check: success of the
// probe is the failure, explained with the test's policy.
func (fx *fixture) expectDenied(test, what string, probe func() error) error {
	if err := probe(); err == nil {
		return fmt.Errorf("%s got through, expected it dropped by the policy of test %s:\n%s", what, test, strings.TrimSpace(policyTestDocs(test)))
	}
	return nil
}

func pair(src, dst endpoint) string { return src.name + "->" + dst.name }

// policyTests is the catalogue's policy tests, in the order they run.
func policyTests() []policyTest {
	return append(append(l3l4Tests(), l7Tests()...), dnsTests()...)
}

// l3l4Tests are the policy tests of L3/L4 rules only.
func l3l4Tests() []policyTest {
	return []policyTest{
		{
			name: "echo-ingress", what: "an ingress policy on echo admits client on TCP 7070 only: client2 and other ports are dropped, pods it does not select stay open",
			docs:    cnp("weft-cx-echo-ingress", "endpointSelector: {"+echoSel+"}\ningress:\n- fromEndpoints: [{"+clientSel+"}]\n  toPorts: [{ports: [{port: \"7070\", protocol: TCP}]}]"),
			enforce: map[string]direction{"echo": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p, x := cl.pods[0], *cl.protected, *cl.other
				add("pod-to-pod/tcp/"+pair(a, p), fx.allowedTCP(a, p))
				add("pod-to-pod-denied-label/tcp/"+pair(x, p), fx.deniedTCP("echo-ingress", x, p))
				add("pod-to-pod-denied-port/udp/"+pair(a, p), fx.deniedUDP("echo-ingress", a, p))
				add("unselected-pod-open/tcp/"+pair(x, a), fx.allowedTCP(x, a))
			},
		},
		{
			name: "echo-ingress-knp", what: "the same ingress policy as a Kubernetes NetworkPolicy",
			docs:    knp("weft-cx-echo-ingress-knp", "podSelector: {"+echoSel+"}\npolicyTypes: [Ingress]\ningress:\n- from: [{podSelector: {"+clientSel+"}}]\n  ports: [{port: 7070, protocol: TCP}]"),
			enforce: map[string]direction{"echo": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p, x := cl.pods[0], *cl.protected, *cl.other
				add("pod-to-pod/tcp/"+pair(a, p), fx.allowedTCP(a, p))
				add("pod-to-pod-denied-label/tcp/"+pair(x, p), fx.deniedTCP("echo-ingress-knp", x, p))
			},
		},
		{
			name: "client-egress", what: "an egress policy on client2 lets it reach echo on TCP 7070 only",
			docs:    cnp("weft-cx-client-egress", "endpointSelector: {"+client2Sel+"}\negress:\n- toEndpoints: [{"+echoSel+"}]\n  toPorts: [{ports: [{port: \"7070\", protocol: TCP}]}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod/tcp/"+pair(x, p), fx.allowedTCP(x, p))
				add("pod-to-pod-denied-label/tcp/"+pair(x, a), fx.deniedTCP("client-egress", x, a))
				add("pod-to-pod-denied-port/udp/"+pair(x, p), fx.deniedUDP("client-egress", x, p))
			},
		},
		{
			name: "client-egress-knp", what: "the same egress policy as a Kubernetes NetworkPolicy",
			docs:    knp("weft-cx-client-egress-knp", "podSelector: {"+client2Sel+"}\npolicyTypes: [Egress]\negress:\n- to: [{podSelector: {"+echoSel+"}}]\n  ports: [{port: 7070, protocol: TCP}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod/tcp/"+pair(x, p), fx.allowedTCP(x, p))
				add("pod-to-pod-denied-label/tcp/"+pair(x, a), fx.deniedTCP("client-egress-knp", x, a))
			},
		},
		{
			name: "client-egress-expression", what: "an egress policy selecting echo by a matchExpressions selector",
			docs:    cnp("weft-cx-client-egress-expression", "endpointSelector: {"+client2Sel+"}\negress:\n- toEndpoints: [{matchExpressions: [{key: app, operator: In, values: ["+protectedApp+"]}]}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod/tcp/"+pair(x, p), fx.allowedTCP(x, p))
				add("pod-to-pod-denied-label/tcp/"+pair(x, a), fx.deniedTCP("client-egress-expression", x, a))
			},
		},
		{
			name: "all-ingress-deny", what: "an ingress rule that allows nothing drops every pod's ingress, on one node and across nodes; the local host still reaches its pods (allow-localhost)",
			docs:    cnp("weft-cx-all-ingress-deny", "endpointSelector: {"+allTestSel+"}\ningress:\n- {}"),
			enforce: map[string]direction{"all": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, b, p := cl.pods[0], cl.pods[len(cl.nodes)], *cl.protected
				add("pod-to-pod-same-node/tcp/"+pair(a, b), fx.deniedTCP("all-ingress-deny", a, b))
				add("pod-to-pod/tcp/"+pair(a, p), fx.deniedTCP("all-ingress-deny", a, p))
				add("host-to-pod-local-node/tcp/"+pair(cl.nodes[0], a), fx.allowedTCP(cl.nodes[0], a))
			},
		},
		{
			name: "all-ingress-deny-knp", what: "the same as a Kubernetes NetworkPolicy with policyTypes Ingress and no rule",
			docs:    knp("weft-cx-all-ingress-deny-knp", "podSelector: {"+allTestSel+"}\npolicyTypes: [Ingress]"),
			enforce: map[string]direction{"all": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p := cl.pods[0], *cl.protected
				add("pod-to-pod/tcp/"+pair(a, p), fx.deniedTCP("all-ingress-deny-knp", a, p))
			},
		},
		{
			name: "all-egress-deny", what: "an egress rule that allows nothing drops every pod's egress: to pods and to hosts",
			docs:    cnp("weft-cx-all-egress-deny", "endpointSelector: {"+allTestSel+"}\negress:\n- {}"),
			enforce: map[string]direction{"all": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, b, p := cl.pods[0], cl.pods[len(cl.nodes)], *cl.protected
				add("pod-to-pod-same-node/tcp/"+pair(a, b), fx.deniedTCP("all-egress-deny", a, b))
				add("pod-to-pod/tcp/"+pair(a, p), fx.deniedTCP("all-egress-deny", a, p))
				add("pod-to-host/tcp/"+pair(a, cl.nodes[0]), fx.deniedTCP("all-egress-deny", a, cl.nodes[0]))
			},
		},
		{
			name: "all-egress-deny-knp", what: "the same as a Kubernetes NetworkPolicy with policyTypes Egress and no rule",
			docs:    knp("weft-cx-all-egress-deny-knp", "podSelector: {"+allTestSel+"}\npolicyTypes: [Egress]"),
			enforce: map[string]direction{"all": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p := cl.pods[0], *cl.protected
				add("pod-to-pod/tcp/"+pair(a, p), fx.deniedTCP("all-egress-deny-knp", a, p))
			},
		},
		{
			name: "all-entities-deny", what: "deny rules win over allow rules: egressDeny and ingressDeny of the entity all beside allows of all",
			docs: cnp("weft-cx-all-entities-deny", "endpointSelector: {"+allTestSel+"}\negress:\n- toEntities: [all]\negressDeny:\n- toEntities: [all]\n"+
				"ingress:\n- fromEntities: [all]\ningressDeny:\n- fromEntities: [all]"),
			enforce: map[string]direction{"all": ingress | egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, b, p := cl.pods[0], cl.pods[len(cl.nodes)], *cl.protected
				add("pod-to-pod-same-node/tcp/"+pair(a, b), fx.deniedTCP("all-entities-deny", a, b))
				add("pod-to-pod/tcp/"+pair(a, p), fx.deniedTCP("all-entities-deny", a, p))
			},
		},
		{
			name: "cluster-entity", what: "egress to the entity cluster reaches every pod of the cluster",
			docs:    cnp("weft-cx-cluster-entity", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [cluster]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x, a := *cl.protected, *cl.other, cl.pods[0]
				add("pod-to-pod-same-node/tcp/"+pair(x, a), fx.allowedTCP(x, a))
				add("pod-to-pod/tcp/"+pair(x, p), fx.allowedTCP(x, p))
			},
		},
		{
			name: "cluster-entity-multi-cluster", what: "the entity cluster is the local cluster only: client2 reaches its own cluster's echo, not another cluster's",
			docs:         cnp("weft-cx-cluster-entity-multi-cluster", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [cluster]"),
			enforce:      map[string]direction{"client2": egress},
			multiCluster: true,
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, x := *cl.protected, *cl.other
				add("pod-to-pod/tcp/"+pair(x, p), fx.allowedTCP(x, p))
				if remote := fx.nextCluster(cl); remote.protected != nil {
					add("pod-to-pod-other-cluster/tcp/"+pair(x, *remote.protected), fx.deniedTCP("cluster-entity-multi-cluster", x, *remote.protected))
				}
			},
		},
		{
			name: "host-entity-egress", what: "egress to the entity host reaches the pod's own node and nothing else",
			docs:    cnp("weft-cx-host-entity-egress", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [host]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-host/tcp/"+pair(x, cl.nodes[0]), fx.allowedTCP(x, cl.nodes[0]))
				add("pod-to-pod-denied/tcp/"+pair(x, a), fx.deniedTCP("host-entity-egress", x, a))
			},
		},
		{
			name: "host-entity-ingress", what: "ingress from the entity host admits the pod's own node and no pod",
			docs:    cnp("weft-cx-host-entity-ingress", "endpointSelector: {"+echoSel+"}\ningress:\n- fromEntities: [host]"),
			enforce: map[string]direction{"echo": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				p, a := *cl.protected, cl.pods[0]
				host := cl.nodes[len(cl.nodes)-1]
				add("host-to-pod/tcp/"+pair(host, p), fx.allowedTCP(host, p))
				add("pod-to-pod-denied/tcp/"+pair(a, p), fx.deniedTCP("host-entity-ingress", a, p))
			},
		},
		{
			name: "allow-all-except-world", what: "egress to the cluster, the host and remote nodes only: client2 reaches client, not the outside",
			outside: true,
			docs:    cnp("weft-cx-allow-all-except-world", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [cluster, host, remote-node]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-pod/tcp/"+pair(x, a), fx.allowedTCP(x, a))
				add("pod-to-world-denied/tcp/"+x.name+"->outside", fx.deniedTCP("allow-all-except-world", x, *fx.outside))
			},
		},
		{
			name: "to-entities-world", what: "egress to the entity world only: client2 reaches the outside (masqueraded), not client",
			outside: true,
			docs:    cnp("weft-cx-to-entities-world", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [world]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-world/tcp/"+x.name+"->outside", fx.allowedWorld(x))
				add("pod-to-pod-denied/tcp/"+pair(x, a), fx.deniedTCP("to-entities-world", x, a))
			},
		},
		{
			name: "to-cidr-external", what: "egress to one outside CIDR only: client2 reaches the outside address, not client",
			outside: true,
			docs:    cnp("weft-cx-to-cidr-external", "endpointSelector: {"+client2Sel+"}\negress:\n- toCIDR: ["+outsideIP.String()+"/32]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-cidr/tcp/"+x.name+"->outside", fx.allowedWorld(x))
				add("pod-to-pod-denied/tcp/"+pair(x, a), fx.deniedTCP("to-cidr-external", x, a))
			},
		},
		{
			name: "to-cidr-external-knp", what: "the same as a Kubernetes NetworkPolicy with an ipBlock",
			outside: true,
			docs:    knp("weft-cx-to-cidr-external-knp", "podSelector: {"+client2Sel+"}\npolicyTypes: [Egress]\negress:\n- to: [{ipBlock: {cidr: "+outsideCIDR+"}}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-cidr/tcp/"+x.name+"->outside", fx.allowedWorld(x))
				add("pod-to-pod-denied/tcp/"+pair(x, a), fx.deniedTCP("to-cidr-external-knp", x, a))
			},
		},
		{
			name: "client-egress-to-cidr-deny", what: "an egressDeny of an outside CIDR beside an allow of every entity: client2 reaches client, not the outside",
			outside: true,
			docs: cnp("weft-cx-client-egress-to-cidr-deny", "endpointSelector: {"+client2Sel+"}\negress:\n- toEntities: [all]\n"+
				"egressDeny:\n- toCIDR: ["+outsideCIDR+"]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				x, a := *cl.other, cl.pods[0]
				add("pod-to-pod/tcp/"+pair(x, a), fx.allowedTCP(x, a))
				add("pod-to-cidr-denied/tcp/"+x.name+"->outside", fx.deniedTCP("client-egress-to-cidr-deny", x, *fx.outside))
			},
		},
		{
			name: "echo-ingress-from-other-client-deny", what: "an ingressDeny of client2 beside an allow of every endpoint: client reaches echo, client2 does not",
			docs: cnp("weft-cx-echo-ingress-from-other-client-deny", "endpointSelector: {"+echoSel+"}\ningress:\n- fromEndpoints: [{}]\n"+
				"ingressDeny:\n- fromEndpoints: [{"+client2Sel+"}]"),
			enforce: map[string]direction{"echo": ingress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p, x := cl.pods[0], *cl.protected, *cl.other
				add("pod-to-pod/tcp/"+pair(a, p), fx.allowedTCP(a, p))
				add("pod-to-pod-denied/tcp/"+pair(x, p), fx.deniedTCP("echo-ingress-from-other-client-deny", x, p))
			},
		},
		{
			name: "client-egress-to-echo-deny", what: "an egressDeny of echo beside an allow of every endpoint: client2 reaches client, not echo",
			docs: cnp("weft-cx-client-egress-to-echo-deny", "endpointSelector: {"+client2Sel+"}\negress:\n- toEndpoints: [{}]\n"+
				"egressDeny:\n- toEndpoints: [{"+echoSel+"}]"),
			enforce: map[string]direction{"client2": egress},
			scenarios: func(fx *fixture, cl cluster, add addFunc) {
				a, p, x := cl.pods[0], *cl.protected, *cl.other
				add("pod-to-pod/tcp/"+pair(x, a), fx.allowedTCP(x, a))
				add("pod-to-pod-denied/tcp/"+pair(x, p), fx.deniedTCP("client-egress-to-echo-deny", x, p))
			},
		},
	}
}

// policyTestDocs returns the documents of a policy test by name.
func policyTestDocs(name string) string {
	for _, t := range policyTests() {
		if t.name == name {
			return t.docs
		}
	}
	return ""
}

// nextCluster is the cluster after cl in the environment (a ring).
func (fx *fixture) nextCluster(cl cluster) cluster {
	for i := range fx.clusters {
		if fx.clusters[i].name == cl.name {
			return fx.clusters[(i+1)%len(fx.clusters)]
		}
	}
	return cl
}

// skippedTests are cilium-cli's tests that do not run against Weft, with
// the reason.
var skippedTests = []skippedTest{
	{"client-ingress-icmp", "ICMP rules (icmps) are not supported by Weft's policy yet"},
	{"client-ingress-to-echo-named-port-deny", "named ports are not supported by Weft's policy yet"},
	{"echo-ingress-l7-named-port", "named ports are not supported by Weft's policy yet"},
	{"client-with-service-account-egress-to-echo", "testenv pods have no Kubernetes service account (Kubernetes mode only)"},
	{"client-egress-to-echo-service-account", "testenv pods have no Kubernetes service account (Kubernetes mode only)"},
	{"client-with-service-account-egress-to-echo-deny", "testenv pods have no Kubernetes service account (Kubernetes mode only)"},
	{"client-egress-to-echo-service-account-deny", "testenv pods have no Kubernetes service account (Kubernetes mode only)"},
	{"no-policies-from-outside", "needs a client outside the cluster"},
	{"all-ingress-deny-from-outside", "needs a client outside the cluster"},
	{"north-south-loadbalancing", "needs a client outside the cluster"},
	{"pod-to-pod-encryption", "Weft has no transparent encryption (and this kernel has no WireGuard or ESP)"},
	{"node-to-node-encryption", "Weft has no transparent encryption (and this kernel has no WireGuard or ESP)"},
	{"egress-gateway", "egress gateways are not built"},
	{"local-redirect-policy", "local redirect policies are not built"},
	{"pod-to-ingress-service-deny-all", "Weft's Ingress reaches backends from the node's address, which every endpoint admits (allow-localhost), so a deny-all ingress policy on the backends does not stop it (Cilium gives Ingress traffic the identity ingress)"},
	{"client-egress-l7-named-port", "named ports are not supported by Weft's policy yet"},
	{"client-egress-tls-sni", "TLS SNI policy is not built (the [l7] work)"},
	{"pod-to-controlplane-host", "needs Kubernetes mode (a control-plane node)"},
	{"pod-to-k8s-on-controlplane", "needs Kubernetes mode (a control-plane node)"},
	{"pod-to-controlplane-host-cidr", "needs Kubernetes mode (a control-plane node)"},
	{"pod-to-k8s-on-controlplane-cidr", "needs Kubernetes mode (a control-plane node)"},
}

// Catalogue lists every test: its name, whether it runs here, and what it
// proves or why it is skipped (for --list and docs/connectivity.md).
type CatalogueEntry struct {
	Name string `json:"name"`
	// Skip is why the test does not run; empty when it runs.
	Skip string `json:"skip,omitempty"`
	What string `json:"what,omitempty"`
}

// Catalogue returns every test, those that run first, in run order.
func Catalogue() []CatalogueEntry {
	out := []CatalogueEntry{
		{Name: "no-policies", What: "without policy: pod to pod on one node and across nodes (ICMP, TCP, UDP), pod to host and host to pod on the local and a remote node, pod to the world (an address outside the cluster, seen as the pod's node), a ClusterIP service from a pod and from a host (answers spread over the backends)"},
		{Name: "health", What: "every node's health endpoint answers a pod"},
		{Name: "pod-mtu", What: "Weft's own: packets at the pod MTU (ICMP with don't-fragment, UDP) and a 1 MiB TCP transfer"},
		{Name: "no-policies-extra", What: "without policy: a NodePort service reached on another node"},
	}
	for _, t := range policyTests() {
		out = append(out, CatalogueEntry{Name: t.name, What: t.what})
	}
	out = append(out,
		CatalogueEntry{Name: "cross-cluster", What: "Weft's own, with several clusters: pod to pod across clusters (ICMP, TCP, UDP), a ring over the clusters"},
		CatalogueEntry{Name: "global-service", What: "Weft's own, with several clusters: a global service answered by backends of every cluster"},
		CatalogueEntry{Name: "no-unexpected-packet-drops", What: "the datapath counted no drop during the run other than those the policy tests caused"},
		CatalogueEntry{Name: "check-log-errors", What: "no agent logged an error during the run"},
	)
	for _, s := range skippedTests {
		out = append(out, CatalogueEntry{Name: s.name, Skip: s.reason})
	}
	return out
}
