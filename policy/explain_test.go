package policy

import (
	"slices"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// Explain names the policy whose rule admits a flow, none for a default
// deny, the deny policy when one matches, and nothing for the host.
func TestExplainNamesThePolicyThatDecides(t *testing.T) {
	repo := repoOf(t, "deathstar.yaml")
	u := NewUniverse()
	star, fighter, xwing := records.ClusterIdentity(1, 300), records.ClusterIdentity(1, 301), records.ClusterIdentity(1, 302)
	u.Upsert(star, pod("default", "org=empire", "class=deathstar"))
	u.Upsert(fighter, pod("default", "org=empire", "class=tiefighter"))
	u.Upsert(xwing, pod("default", "org=alliance", "class=xwing"))
	const tcp, udp = 6, 17
	for _, tc := range []struct {
		name     string
		subject  records.ID
		dir      datapath.Direction
		peer     records.ID
		port     uint16
		proto    uint8
		denied   bool
		policies []string
	}{
		{"empire ship lands on 80", star, datapath.Ingress, fighter, 80, tcp, false, []string{"default/deathstar"}},
		{"empire ship on another port", star, datapath.Ingress, fighter, 443, tcp, true, nil},
		{"empire ship over UDP", star, datapath.Ingress, fighter, 80, udp, true, nil},
		{"alliance ship", star, datapath.Ingress, xwing, 80, tcp, true, nil},
		{"the host (allow-localhost)", star, datapath.Ingress, records.IDHost, 80, tcp, false, nil},
		{"egress is not enforced", star, datapath.Egress, xwing, 80, tcp, false, nil},
		{"a pod no policy selects", fighter, datapath.Ingress, xwing, 80, tcp, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := repo.Explain(u, tc.subject, tc.dir, tc.peer, tc.port, tc.proto)
			if !v.Known || v.Denied != tc.denied || !slices.Equal(v.Policies, tc.policies) {
				t.Fatalf("Explain = %+v, want denied %v by %v", v, tc.denied, tc.policies)
			}
		})
	}
	if v := repo.Explain(u, records.ClusterIdentity(1, 999), datapath.Ingress, fighter, 80, tcp); v.Known {
		t.Errorf("an unknown endpoint identity is explained: %+v", v)
	}

	// A deny rule wins and is named.
	ps, err := Parse([]byte(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: no-tiefighters, namespace: default}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	repo.Upsert(ps[0])
	if v := repo.Explain(u, star, datapath.Ingress, fighter, 80, tcp); !v.Denied || !slices.Equal(v.Policies, []string{"default/no-tiefighters"}) {
		t.Errorf("with a deny rule: %+v, want denied by default/no-tiefighters", v)
	}
}
