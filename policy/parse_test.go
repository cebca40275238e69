package policy

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseExamples(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string // Policy.String of each document
	}{
		{"deathstar.yaml", []string{"cilium.io/v2 CiliumNetworkPolicy default/deathstar"}},
		{"deathstar-l7.yaml", []string{"cilium.io/v2 CiliumNetworkPolicy default/rule1"}},
		{"team-isolation.yaml", []string{"cilium.io/v2 CiliumNetworkPolicy team-a/isolate-team-a", "cilium.io/v2 CiliumNetworkPolicy team-b/team-a-to-api"}},
		{"team-isolation-k8s.yaml", []string{"networking.k8s.io/v1 NetworkPolicy team-a/isolate-team-a", "networking.k8s.io/v1 NetworkPolicy team-b/team-a-to-api"}},
		{"cidr-entities.yaml", []string{"cilium.io/v2 CiliumClusterwideNetworkPolicy egress-limits"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ps, err := Parse(readFile(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
				if strings.TrimSpace(p.Document) == "" {
					t.Errorf("%s: empty document", p)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseSelectors(t *testing.T) {
	ps, err := Parse(readFile(t, "team-isolation.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"empty subject limited to the namespace", ps[0].Rules[0].Subject.String(), "k8s:io.kubernetes.pod.namespace=team-a"},
		{"empty peer limited to the namespace", ps[0].Rules[0].Ingress[0].Peers[0].Endpoints.String(), "k8s:io.kubernetes.pod.namespace=team-a"},
		{"subject keys without source match any source", ps[1].Rules[0].Subject.String(), "any:app=api, k8s:io.kubernetes.pod.namespace=team-b"},
		{"peer naming the namespace keeps it", ps[1].Rules[0].Ingress[0].Peers[0].Endpoints.String(), "any:app=frontend, k8s:io.kubernetes.pod.namespace=team-a"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	k8s, err := Parse(readFile(t, "team-isolation-k8s.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	peer := k8s[1].Rules[0].Ingress[0]
	if got, want := peer.Peers[0].Endpoints.String(), "k8s:app=frontend, k8s:io.kubernetes.pod.namespace=team-a"; got != want {
		t.Errorf("namespaceSelector: got %q, want %q", got, want)
	}
	if got := peer.Ports; len(got) != 1 || got[0] != (PortRange{Port: 8080, EndPort: 8081, Proto: 6}) {
		t.Errorf("ports: got %v", got)
	}
}

const header = "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n"

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown top field", header + "spec:\n  endpointSelector: {}\nfoo: 1\n",
			"document 1 (CiliumNetworkPolicy default/p): foo: unknown field; accepted are apiVersion, kind, metadata, spec, specs, status"},
		{"unknown spec field", header + "spec:\n  endpointSelector: {}\n  ingres: []\n",
			"spec.ingres: unknown field; accepted are endpointSelector"},
		{"SCTP", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        protocol: SCTP\n",
			`spec.ingress[0].toPorts[0].ports[0].protocol: "SCTP" is not supported; accepted are TCP, UDP, ANY`},
		{"named port", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: http\n",
			`spec.ingress[0].toPorts[0].ports[0].port: named port "http": named ports are not supported yet`},
		{"L7 DNS on ingress", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toPorts:\n    - ports:\n      - port: \"53\"\n        protocol: UDP\n      rules:\n        dns:\n        - matchPattern: \"*\"\n",
			"spec.ingress[0].toPorts[0].rules.dns: DNS rules apply to egress only"},
		{"L7 DNS without ports", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - rules:\n        dns:\n        - matchPattern: \"*\"\n",
			"spec.egress[0].toPorts[0].ports: required by rules.dns"},
		{"L7 DNS empty", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"53\"\n      rules:\n        dns: []\n",
			"spec.egress[0].toPorts[0].rules.dns: an empty list allows no query"},
		{"L7 DNS bad pattern", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"53\"\n      rules:\n        dns:\n        - matchPattern: \"a b\"\n",
			"spec.egress[0].toPorts[0].rules.dns[0]: "},
		{"L7 DNS and HTTP", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"53\"\n      rules:\n        dns:\n        - matchPattern: \"*\"\n        http:\n        - method: GET\n",
			"spec.egress[0].toPorts[0].rules: one toPorts entry takes http or dns rules, not both"},
		{"port range too large", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"1000\"\n        endPort: 5000\n",
			"spec.egress[0].toPorts[0].ports[0].endPort: range 1000-5000 covers 4001 ports; at most 1024 are accepted"},
		{"endPort below port", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toPorts:\n    - ports:\n      - port: \"80\"\n        endPort: 79\n",
			"endPort: 79 is below port 80"},
		{"except outside", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDRSet:\n    - cidr: 10.0.0.0/8\n      except: [11.0.0.0/16]\n",
			"spec.egress[0].toCIDRSet[0].except[0]: 11.0.0.0/16 is not within 10.0.0.0/8"},
		{"bad CIDR", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDR: [10.0.0.0/40]\n",
			`spec.egress[0].toCIDR[0]: "10.0.0.0/40" is not a CIDR`},
		{"IPv6 CIDR", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toCIDR: [\"fd00::/8\"]\n",
			"IPv6 CIDRs are not supported yet"},
		{"unknown entity", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toEntities: [kube-apiserver]\n",
			`spec.egress[0].toEntities[0]: entity "kube-apiserver" is not supported; accepted are all, world`},
		{"bad operator", header + "spec:\n  endpointSelector:\n    matchExpressions:\n    - key: app\n      operator: Equals\n      values: [a]\n",
			`spec.endpointSelector.matchExpressions[0].operator: "Equals" is not supported; accepted are In, NotIn, Exists, DoesNotExist`},
		{"toFQDNs both", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toFQDNs:\n    - matchName: example.com\n      matchPattern: \"*.example.com\"\n",
			"spec.egress[0].toFQDNs[0]: "},
		{"toFQDNs unknown field", header + "spec:\n  endpointSelector: {}\n  egress:\n  - toFQDNs:\n    - name: example.com\n",
			"spec.egress[0].toFQDNs[0].name: unknown field; accepted are matchName, matchPattern"},
		{"toFQDNs on ingress", header + "spec:\n  endpointSelector: {}\n  ingress:\n  - toFQDNs:\n    - matchName: example.com\n",
			"spec.ingress[0].toFQDNs: unknown field"},
		{"missing selector", header + "spec:\n  ingress: [{}]\n", "spec.endpointSelector: required"},
		{"missing name", "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {}\nspec:\n  endpointSelector: {}\n", "metadata.name: required"},
		{"bad kind", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", `apiVersion "v1" kind "Pod" is not supported; accepted are cilium.io/v2 CiliumNetworkPolicy`},
		{"clusterwide with namespace", "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: p\n  namespace: x\nspec:\n  endpointSelector: {}\n",
			`metadata.namespace: "x": a CiliumClusterwideNetworkPolicy has no namespace`},
		{"k8s SCTP", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - protocol: SCTP\n      port: 5\n",
			`spec.ingress[0].ports[0].protocol: "SCTP" is not supported; accepted are TCP, UDP`},
		{"k8s policy type", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n  policyTypes: [Both]\n",
			`spec.policyTypes[0]: "Both" is not a policy type`},
		{"k8s named port", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n  ingress:\n  - ports:\n    - port: http\n",
			`spec.ingress[0].ports[0].port: named port "http"`},
		{"k8s unknown nested field", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - podSelectr: {}\n",
			`unknown field "spec.ingress[0].from[0].podSelectr"`},
		{"k8s invalid label key", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector:\n    matchLabels: {\"bad key!\": x}\n",
			`spec.podSelector: key: Invalid value: "bad key!"`},
		{"k8s In without values", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector:\n    matchExpressions: [{key: a, operator: In}]\n",
			`values set can't be empty`},
		{"duplicate key", header + "spec:\n  endpointSelector: {}\n  endpointSelector: {}\n", "parse YAML"},
		{"not YAML", "{[", "parse YAML"},
		{"duplicate policy", header + "spec:\n  endpointSelector: {}\n---\n" + header + "spec:\n  endpointSelector: {}\n",
			"document 2 (CiliumNetworkPolicy default/p): policy default/p is also defined by document 1"},
		{"same name, other kind", header + "spec:\n  endpointSelector: {}\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\nspec:\n  podSelector: {}\n",
			"document 2 (NetworkPolicy default/p): policy default/p is also defined by document 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestParseDocumentsReportsEach(t *testing.T) {
	in := string(readFile(t, "deathstar.yaml")) + "\n---\n# only a comment\n---\n" + header + "spec: {}\n"
	docs := ParseDocuments([]byte(in))
	if len(docs) != 2 {
		t.Fatalf("got %d documents, want 2 (the comment-only one is skipped)", len(docs))
	}
	if docs[0].Err != nil || docs[0].Policy == nil {
		t.Errorf("document 1: %v", docs[0].Err)
	}
	if docs[1].Err == nil || !strings.Contains(docs[1].Err.Error(), "document 2 (CiliumNetworkPolicy default/p): spec.endpointSelector: required") {
		t.Errorf("document 2: got %v", docs[1].Err)
	}
	if _, err := Parse([]byte("# nothing\n")); err == nil {
		t.Error("an input without documents was accepted")
	}
}

// TestCiliumDocsVerbatim parses the namespace isolation examples as the
// Cilium documentation writes them (matchLabels: {} and quoted names).
// TestTopLevelDescription: the older form of Cilium's getting-started
// rule, with description beside metadata, imports verbatim and enforces
// the same as the form with spec.description.
func TestTopLevelDescription(t *testing.T) {
	ps, err := Parse([]byte(`apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "L3-L4 policy to restrict deathstar access to empire ships only"
metadata:
  name: "rule1"
spec:
  endpointSelector:
    matchLabels:
      org: empire
      class: deathstar
  ingress:
  - fromEndpoints:
    - matchLabels:
        org: empire
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`))
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].Description != "L3-L4 policy to restrict deathstar access to empire ships only" {
		t.Errorf("description %q", ps[0].Description)
	}
	u := NewUniverse()
	tie, xwing, deathstar := pod("default", "org=empire", "class=tiefighter"), pod("default", "org=alliance", "class=xwing"), pod("default", "org=empire", "class=deathstar")
	u.Upsert(300, tie)
	u.Upsert(301, xwing)
	u.Upsert(302, deathstar)
	repo := NewRepository()
	repo.Upsert(ps[0])
	got := repo.Compute(deathstar, u).Policy
	if want := fmt.Sprint([]datapath.Rule{allow(records.IDHost, 0, 0), allow(300, 80, 6), allow(302, 80, 6)}); fmt.Sprint(got.Ingress) != want || !got.IngressEnforced {
		t.Errorf("rule1 with a top-level description: ingress %v, want %v (org=empire on 80/TCP: the tiefighter and the deathstar, not the xwing)", got.Ingress, want)
	}
	if _, err := Parse([]byte("apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\ndescription: [not, text]\nmetadata: {name: x}\nspec: {endpointSelector: {}}\n")); err == nil {
		t.Error("a description that is not text was accepted")
	}
}

func TestCiliumDocsVerbatim(t *testing.T) {
	ps, err := Parse([]byte(`apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "isolate-ns1"
  namespace: ns1
spec:
  endpointSelector:
    matchLabels:
      {}
  ingress:
  - fromEndpoints:
    - matchLabels:
        {}
---
apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
metadata:
  name: "k8s-expose-across-namespace"
  namespace: ns2
spec:
  endpointSelector:
    matchLabels:
      name: leia
  ingress:
  - fromEndpoints:
    - matchLabels:
        k8s:io.kubernetes.pod.namespace: ns1
        name: luke
`))
	if err != nil {
		t.Fatal(err)
	}
	u := NewUniverse()
	luke, leia, other := pod("ns1", "name=luke"), pod("ns2", "name=leia"), pod("ns2", "name=han")
	u.Upsert(300, luke)
	u.Upsert(301, leia)
	u.Upsert(302, other)
	repo := NewRepository()
	for _, p := range ps {
		repo.Upsert(p)
	}
	if got := repo.Compute(leia, u).Policy; fmt.Sprint(got.Ingress) != fmt.Sprint([]datapath.Rule{allow(records.IDHost, 0, 0), allow(300, 0, 0)}) || !got.IngressEnforced {
		t.Errorf("leia: %+v", got)
	}
	if got := repo.Compute(luke, u).Policy; fmt.Sprint(got.Ingress) != fmt.Sprint([]datapath.Rule{allow(records.IDHost, 0, 0), allow(300, 0, 0)}) || !got.IngressEnforced {
		t.Errorf("luke: %+v", got)
	}
	if got := repo.Compute(other, u).Policy; got.IngressEnforced {
		t.Errorf("han is not selected: %+v", got)
	}
}

// TestParseIntoNamespace: -n of weft policy import gives the namespace of
// namespaced documents that name none, as kubectl apply -n does.
func TestParseIntoNamespace(t *testing.T) {
	star := readFile(t, "deathstar.yaml")
	ps, err := ParseIn(star, "dev")
	if err != nil {
		t.Fatal(err)
	}
	if ps[0].ID() != "dev/deathstar" || !strings.Contains(ps[0].Rules[0].Subject.String(), "io.kubernetes.pod.namespace=dev") {
		t.Errorf("got %s selecting %s, want dev/deathstar selecting pods of dev", ps[0].ID(), ps[0].Rules[0].Subject)
	}
	if ps, err := Parse(star); err != nil || ps[0].ID() != "default/deathstar" {
		t.Errorf("without a namespace: %v %v, want default/deathstar", ps, err)
	}
	named := "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: p\n  namespace: prod\nspec:\n  endpointSelector: {}\n"
	if ps, err := ParseIn([]byte(named), "prod"); err != nil || ps[0].ID() != "prod/p" {
		t.Errorf("a document naming the same namespace: %v %v", ps, err)
	}
	if _, err := ParseIn([]byte(named), "dev"); err == nil || !strings.Contains(err.Error(), `metadata.namespace: "prod" does not match the namespace "dev" given for the import`) {
		t.Errorf("a document naming another namespace: got %v", err)
	}
	if _, err := ParseIn(star, "Not_A_Label"); err == nil || !strings.Contains(err.Error(), `the namespace "Not_A_Label" given for the import must be a lowercase DNS label`) {
		t.Errorf("an invalid namespace: got %v", err)
	}
	ccnp := "apiVersion: cilium.io/v2\nkind: CiliumClusterwideNetworkPolicy\nmetadata:\n  name: c\nspec:\n  endpointSelector: {}\n"
	if ps, err := ParseIn([]byte(ccnp), "dev"); err != nil || ps[0].ID() != "c" {
		t.Errorf("a clusterwide document with -n: %v %v, want c (no namespace)", ps, err)
	}
}
