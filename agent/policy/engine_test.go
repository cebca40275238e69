package policy

import (
	"context"
	"fmt"
	"github.com/weftnet/weft/agent/endpoints"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// fakePolicyDatapath records the policies the engine writes.
type fakePolicyDatapath struct {
	mu  sync.Mutex
	got map[uint16]datapath.Policy
}

func (f *fakePolicyDatapath) SetPolicy(_ context.Context, id uint16, p datapath.Policy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got[id] = p
	return nil
}

func (f *fakePolicyDatapath) policy(id uint16) datapath.Policy {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[id]
}

type fakePrefixes struct {
	mu sync.Mutex
	m  map[netip.Prefix]uint32
}

func (f *fakePrefixes) SetPrefix(_ context.Context, p netip.Prefix, id uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[p] = id
}

func (f *fakePrefixes) DeletePrefix(_ context.Context, p netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, p)
}

func (f *fakePrefixes) get(p netip.Prefix) uint32 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.m[p]
}

// policyRig is a policy engine on a real (embedded) etcd with a fake
// datapath, and the Policy API in front of it.
type policyRig struct {
	store    kvstore.Client
	keys     records.Keys
	engine   *Engine
	api      *API
	dp       *fakePolicyDatapath
	prefixes *fakePrefixes

	mu  sync.Mutex
	eps []*endpoints.Endpoint
}

func newPolicyRig(t testing.TB, srv kvstoretest.Server) *policyRig {
	return newPolicyRigLog(t, srv, statetest.Logger(t))
}

// newPolicyRigLog is newPolicyRig with its own logger (fuzz targets must
// not log through testing.F).
func newPolicyRigLog(t testing.TB, srv kvstoretest.Server, log *slog.Logger) *policyRig {
	r := &policyRig{dp: &fakePolicyDatapath{got: map[uint16]datapath.Policy{}}, prefixes: &fakePrefixes{m: map[netip.Prefix]uint32{}}}
	r.store = srv.NewClient(t, statetest.Unlimited)
	r.keys = records.NewKeys(r.store.Prefix())
	r.engine = New(r.store, r.keys, "n1", r.dp, r.prefixes, r.endpoints, log)
	r.api = NewAPI(r.engine, nil)
	statetest.Go(t, r.engine.Run)
	return r
}

func (r *policyRig) endpoints() []*endpoints.Endpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.eps)
}

// addEndpoint adds a local endpoint and applies its policy as
// CreateEndpoint does.
func (r *policyRig) addEndpoint(t testing.TB, id uint16, identity records.ID, ls records.Labels) *endpoints.Endpoint {
	ep := &endpoints.Endpoint{ID: id, Identity: identity, Namespace: "default", Pod: fmt.Sprintf("pod-%d", id), IdentityLabels: ls,
		IP: netip.AddrFrom4([4]byte{10, 0, byte(id >> 8), byte(id)})}
	r.mu.Lock()
	r.eps = append(r.eps, ep)
	r.mu.Unlock()
	if err := r.engine.EndpointChanged(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	return ep
}

func (r *policyRig) putIdentity(t testing.TB, id records.ID, ls records.Labels) {
	key := r.keys.Identity(id)
	v, err := records.Encode(key, &records.Identity{ID: id, Labels: ls})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.Update(context.Background(), key, v); err != nil {
		t.Fatal(err)
	}
}

func (r *policyRig) importFile(t testing.TB, file string) {
	b, err := os.ReadFile("../../policy/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: b}); err != nil {
		t.Fatalf("import %s: %v", file, err)
	}
}

func podLabels(ns string, kv ...string) records.Labels {
	ls := []string{"k8s:io.kubernetes.pod.namespace=" + ns, "k8s:io.cilium.k8s.policy.cluster=c1"}
	for _, l := range kv {
		ls = append(ls, "k8s:"+l)
	}
	return records.MustParseLabels(ls...)
}

func allows(p datapath.Policy, id records.ID, port uint16) bool {
	return slices.Contains(p.Ingress, datapath.Rule{Identity: uint32(id), Port: port, Proto: datapath.ProtoTCP})
}

func TestPolicyEngineFollowsPoliciesAndIdentities(t *testing.T) {
	r := newPolicyRig(t, kvstoretest.StartEtcd(t))
	star, fighter, xwing := records.ClusterIdentity(1, 256), records.ClusterIdentity(1, 257), records.ClusterIdentity(1, 258)
	starLabels := podLabels("default", "org=empire", "class=deathstar")
	r.putIdentity(t, star, starLabels)
	r.putIdentity(t, fighter, podLabels("default", "org=empire", "class=tiefighter"))
	r.putIdentity(t, xwing, podLabels("default", "org=alliance", "class=xwing"))
	ep := r.addEndpoint(t, 7, star, starLabels)
	if p := r.dp.policy(7); p.IngressEnforced {
		t.Fatalf("enforced before any policy: %+v", p)
	}

	r.importFile(t, "deathstar.yaml")
	statetest.Eventually(t, 10*time.Second, "deathstar admits the tiefighter on 80/TCP only", func() error {
		p := r.dp.policy(7)
		if !p.IngressEnforced || !allows(p, fighter, 80) || allows(p, xwing, 80) || p.EgressEnforced {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})

	late := records.ClusterIdentity(1, 300)
	r.putIdentity(t, late, podLabels("default", "org=empire", "class=shuttle"))
	statetest.Eventually(t, 10*time.Second, "a new empire identity is admitted", func() error {
		if p := r.dp.policy(7); !allows(p, late, 80) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	if err := r.store.Delete(context.Background(), r.keys.Identity(late)); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, 10*time.Second, "a vanished identity is no longer admitted", func() error {
		if p := r.dp.policy(7); allows(p, late, 80) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})

	ap := r.engine.EndpointPolicy(ep)
	if ap == nil || !ap.IngressEnforced || len(ap.Rules) != 3 || ap.Rules[0].Identity != 1 || ap.Rules[2].Port != 80 || ap.Rules[2].Protocol != "TCP" ||
		!slices.Contains(ap.Rules[2].Labels, "k8s:class=tiefighter") {
		t.Errorf("effective policy of the endpoint: %v", ap)
	}

	d, err := r.api.Get(context.Background(), &agentapi.GetPolicyRequest{Namespace: "default", Name: "deathstar"})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Rules) != 1 || len(d.Rules[0].Endpoints) != 1 || d.Rules[0].Endpoints[0].Id != 7 || d.Summary.SelectedEndpoints != 1 {
		t.Errorf("get deathstar: %v", d)
	}

	del, err := r.api.Delete(context.Background(), &agentapi.DeletePolicyRequest{Namespace: "default", Name: "deathstar"})
	if err != nil || !del.Existed {
		t.Fatalf("delete: %v %v", del, err)
	}
	statetest.Eventually(t, 10*time.Second, "deleting the policy lifts enforcement", func() error {
		if p := r.dp.policy(7); p.IngressEnforced || len(p.Ingress) > 0 {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	if r.engine.EndpointPolicy(ep) != nil {
		t.Error("an endpoint no policy selects shows an effective policy")
	}
}

func TestPolicyEngineCIDRAndClusterwide(t *testing.T) {
	r := newPolicyRig(t, kvstoretest.StartEtcd(t))
	client := records.ClusterIdentity(1, 256)
	ls := podLabels("default", "role=client")
	r.putIdentity(t, client, ls)
	r.addEndpoint(t, 3, client, ls)
	r.importFile(t, "cidr-entities.yaml")
	in, out := netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.128/25")
	statetest.Eventually(t, 10*time.Second, "CIDR identities written and allowed", func() error {
		idIn, idOut := r.prefixes.get(in), r.prefixes.get(out)
		if idIn == 0 || idOut == 0 || idIn == idOut {
			return fmt.Errorf("prefix identities %d, %d", idIn, idOut)
		}
		p := r.dp.policy(3)
		if !p.EgressEnforced || !slices.Contains(p.Egress, datapath.Rule{Identity: idIn}) || slices.Contains(p.Egress, datapath.Rule{Identity: idOut}) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	l, err := r.api.List(context.Background(), &agentapi.ListPoliciesRequest{})
	if err != nil || len(l.Policies) != 1 || l.Policies[0].Namespace != "" || l.Policies[0].Kind != "CiliumClusterwideNetworkPolicy" {
		t.Fatalf("list: %v %v", l, err)
	}
	if _, err := r.api.Delete(context.Background(), &agentapi.DeletePolicyRequest{Name: "egress-limits"}); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, 10*time.Second, "CIDR identities removed with the policy", func() error {
		if id := r.prefixes.get(in); id != 0 {
			return fmt.Errorf("prefix %s still has identity %d", in, id)
		}
		return nil
	})
}

// TestPolicyImportAllOrNothing imports inputs holding an invalid document
// and checks the store did not change.
func TestPolicyImportAllOrNothing(t *testing.T) {
	r := newPolicyRig(t, kvstoretest.StartEtcd(t))
	r.importFile(t, "team-isolation.yaml")
	before := r.storedPolicies(t)
	valid, err := os.ReadFile("../../policy/testdata/deathstar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, input, want string }{
		{"valid then invalid", string(valid) + "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\nspec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        protocol: SCTP\n",
			`document 2 (CiliumNetworkPolicy default/x): spec.ingress[0].toPorts[0].ports[0].protocol: "SCTP" is not supported`},
		{"L7 rule with an invalid regex", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: x\nspec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n      rules:\n        http:\n        - method: GET\n          path: \"/v1/(\"\n",
			`spec.ingress[0].toPorts[0].rules.http[0].path: "/v1/(" is not a regular expression`},
		{"replacing a stored policy with garbage", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: isolate-team-a\n  namespace: team-a\nspec:\n  endpointSelector: {}\n  egress: 5\n", "spec.egress: expected a list"},
		{"empty", "# nothing\n", "no YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: []byte(tc.input)})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want InvalidArgument containing %q", err, tc.want)
			}
			if docs := importDetail(err); tc.name != "empty" && !slices.ContainsFunc(docs, func(d *agentapi.ImportedDocument) bool { return strings.Contains(d.Error, tc.want) }) {
				t.Errorf("the per-document results %v do not hold the error", docs)
			}
			if after := r.storedPolicies(t); !slices.Equal(before, after) {
				t.Errorf("the store changed: before %q, after %q", before, after)
			}
		})
	}
}

// importDetail returns the per-document results an Import error carries.
func importDetail(err error) []*agentapi.ImportedDocument {
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*agentapi.ImportPolicyResponse); ok {
			return r.Documents
		}
	}
	return nil
}

// storedPolicies lists the policy keys and values in the store.
func (r *policyRig) storedPolicies(t testing.TB) []string {
	kvs, err := r.store.List(context.Background(), r.keys.PoliciesPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

// TestPolicyImportIntoNamespace: a document without metadata.namespace
// imported with a namespace (weft policy import -n dev) is stored and
// enforced there, also after the engine re-reads it from the store.
func TestPolicyImportIntoNamespace(t *testing.T) {
	r := newPolicyRig(t, kvstoretest.StartEtcd(t))
	star, fighter, devFighter := records.ClusterIdentity(1, 256), records.ClusterIdentity(1, 257), records.ClusterIdentity(1, 258)
	starLabels := podLabels("dev", "org=empire", "class=deathstar")
	r.putIdentity(t, star, starLabels)
	r.putIdentity(t, fighter, podLabels("default", "org=empire", "class=tiefighter"))
	r.putIdentity(t, devFighter, podLabels("dev", "org=empire", "class=tiefighter"))
	r.addEndpoint(t, 7, star, starLabels)
	doc, err := os.ReadFile("../../policy/testdata/deathstar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: doc, Namespace: "dev"})
	if err != nil || !resp.Stored || resp.Documents[0].Namespace != "dev" {
		t.Fatalf("import -n dev: %v %v", resp, err)
	}
	statetest.Eventually(t, 10*time.Second, "dev/deathstar admits dev's tiefighter only", func() error {
		p := r.dp.policy(7)
		if !p.IngressEnforced || !allows(p, devFighter, 80) || allows(p, fighter, 80) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	if _, err := r.api.Get(context.Background(), &agentapi.GetPolicyRequest{Namespace: "dev", Name: "deathstar"}); err != nil {
		t.Errorf("get dev/deathstar: %v", err)
	}
	list, err := r.api.List(context.Background(), &agentapi.ListPoliciesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.Policies {
		if s.GetError() != "" {
			t.Errorf("policy %s/%s is listed with an error: %s", s.GetNamespace(), s.GetName(), s.GetError())
		}
	}

	before := r.storedPolicies(t)
	_, err = r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: doc, Namespace: "Dev!"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), `namespace "Dev!" must be a lowercase DNS label`) {
		t.Errorf("an invalid namespace: got %v", err)
	}
	if after := r.storedPolicies(t); !slices.Equal(before, after) {
		t.Errorf("the store changed: before %q, after %q", before, after)
	}
}

// TestPolicyEngineL7Redirects: Cilium's L7 deathstar rule imports, and
// port 80 is opened to the tiefighter only through the L7 proxy (a
// redirect entry, never an L3/L4 allow); an L3/L4 rule for the same port
// opens it without the proxy.
func TestPolicyEngineL7Redirects(t *testing.T) {
	r := newPolicyRig(t, kvstoretest.StartEtcd(t))
	star, fighter := records.ClusterIdentity(1, 256), records.ClusterIdentity(1, 257)
	starLabels := podLabels("default", "org=empire", "class=deathstar")
	r.putIdentity(t, star, starLabels)
	r.putIdentity(t, fighter, podLabels("default", "org=empire", "class=tiefighter"))
	r.addEndpoint(t, 7, star, starLabels)

	r.importFile(t, "deathstar-l7.yaml")
	redirect := datapath.Rule{Identity: uint32(fighter), Port: 80, Proto: datapath.ProtoTCP, Redirect: true}
	statetest.Eventually(t, 10*time.Second, "the deathstar's port 80 is redirected for the tiefighter", func() error {
		if p := r.dp.policy(7); !p.IngressEnforced || allows(p, fighter, 80) || !slices.Contains(p.Ingress, redirect) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	d, err := r.api.Get(context.Background(), &agentapi.GetPolicyRequest{Namespace: "default", Name: "rule1"})
	if err != nil {
		t.Fatalf("the L7 rule is not in the agent's policies: %v", err)
	}
	if want := "80/TCP HTTP {POST /v1/request-landing}"; len(d.Rules) != 1 || len(d.Rules[0].Ingress) != 1 || !strings.HasSuffix(d.Rules[0].Ingress[0], want) {
		t.Errorf("weft policy get rule1 shows %v, want the ingress rule ending %q", d.Rules, want)
	}
	// The proxy decides each request of a connection the datapath handed
	// it by the rules in force now.
	xwing := records.ClusterIdentity(1, 258)
	r.putIdentity(t, xwing, podLabels("default", "org=alliance", "class=xwing"))
	ip := r.endpoints()[0].IP
	decides := func(what string, peer records.ID, method, path string, want bool) {
		t.Helper()
		statetest.Eventually(t, 10*time.Second, what, func() error {
			pol := r.engine.HTTPPolicyOf(ip, datapath.Ingress, 80)
			if pol == nil {
				return fmt.Errorf("no HTTP policy for %v port 80", ip)
			}
			if got := pol.Matcher(peer).Match(policy.HTTPRequest{Method: method, Path: path}).Allowed; got != want {
				return fmt.Errorf("%s %s from %v allowed: %v, want %v", method, path, peer, got, want)
			}
			return nil
		})
	}
	decides("the tiefighter may land", fighter, "POST", "/v1/request-landing", true)
	decides("the tiefighter may not reach the exhaust port", fighter, "PUT", "/v1/exhaust-port", false)

	r.importFile(t, "deathstar.yaml")
	statetest.Eventually(t, 10*time.Second, "the L3/L4 rule opens port 80 to the tiefighter", func() error {
		if p := r.dp.policy(7); !allows(p, fighter, 80) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	decides("with an L3/L4 allow too, every request of the tiefighter passes", fighter, "PUT", "/v1/exhaust-port", true)

	// The L7 rule removed, the port has no HTTP rules: connections already
	// at the proxy are decided by the L3/L4 policy, not refused.
	if _, err := r.api.Delete(context.Background(), &agentapi.DeletePolicyRequest{Namespace: "default", Name: "rule1"}); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, 10*time.Second, "port 80 no longer redirected", func() error {
		if p := r.dp.policy(7); slices.Contains(p.Ingress, redirect) || !allows(p, fighter, 80) {
			return fmt.Errorf("policy %+v", p)
		}
		return nil
	})
	decides("without HTTP rules, the tiefighter's requests pass by the L3/L4 allow", fighter, "PUT", "/v1/exhaust-port", true)
	decides("without HTTP rules, the x-wing's requests are refused by the L3/L4 policy", xwing, "GET", "/", false)

	if _, err := r.api.Delete(context.Background(), &agentapi.DeletePolicyRequest{Namespace: "default", Name: "deathstar"}); err != nil {
		t.Fatal(err)
	}
	decides("with no policy at all, the x-wing's requests pass", xwing, "GET", "/", true)
	if pol := r.engine.HTTPPolicyOf(netip.MustParseAddr("10.9.9.9"), datapath.Ingress, 80); pol != nil {
		t.Errorf("an address no endpoint has got an HTTP policy; want none (every request refused)")
	}
	// An agent starting, its policies not read yet, refuses them all.
	starting := New(r.store, r.keys, "n1", r.dp, r.prefixes, r.endpoints, statetest.Logger(t))
	if pol := starting.HTTPPolicyOf(ip, datapath.Ingress, 80); pol == nil || pol.Matcher(xwing).Match(policy.HTTPRequest{Method: "GET", Path: "/"}).Allowed {
		t.Errorf("before the policies are read, a request passed (policy %v); want every request refused", pol)
	}
	if pol := starting.DNSPolicyOf(ip, 53); pol == nil || pol.Allows(records.IDWorld, "example.com") {
		t.Errorf("before the policies are read, a DNS query passed (policy %v); want every query refused", pol)
	}
	if pol := r.engine.DNSPolicyOf(ip, 53); pol == nil || !pol.Allows(records.IDWorld, "example.com") {
		t.Errorf("with no policy at all, a DNS query from a flow at the proxy was refused (policy %v); want it passed", pol)
	}
}
