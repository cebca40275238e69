package httpproxy

import (
	"net/http"
	"net/netip"
	"os"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/state/records"
)

// addressBook answers LookupIP from a fixed table, as the agent's ipcache
// would for the loopback client of the test.
type addressBook map[netip.Addr]flow.Endpoint

func (b addressBook) LookupIP(ip netip.Addr) (flow.Endpoint, bool) {
	ep, ok := b[ip]
	return ep, ok
}

// TestPeerIdentity: with the deathstar's HTTP policy computed from the
// L7 rule, the landing is allowed for a client the ipcache names a
// tiefighter, and denied for an xwing and for an address it does not know
// (the world).
func TestPeerIdentity(t *testing.T) {
	labels := func(kv ...string) records.Labels {
		ls := []string{"k8s:io.kubernetes.pod.namespace=default", "k8s:io.cilium.k8s.policy.cluster=c1"}
		for _, l := range kv {
			ls = append(ls, "k8s:"+l)
		}
		return records.MustParseLabels(ls...)
	}
	u := policy.NewUniverse()
	u.Upsert(300, labels("org=empire", "class=tiefighter"))
	u.Upsert(301, labels("org=alliance", "class=xwing"))
	deathstar := labels("org=empire", "class=deathstar")
	u.Upsert(302, deathstar)
	doc, err := os.ReadFile("../../policy/testdata/deathstar-l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := policy.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	repo := policy.NewRepository()
	repo.Upsert(ps[0])
	l7, err := repo.ComputeHTTP(deathstar, u)
	if err != nil {
		t.Fatal(err)
	}
	hp := l7[policy.L7Port{Direction: datapath.Ingress, Port: 80}]
	loopback := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		name  string
		peers flow.EndpointLookup
		want  int
	}{
		{"tiefighter", addressBook{loopback: {Identity: 300}}, 200},
		{"xwing", addressBook{loopback: {Identity: 301}}, 403},
		{"unknown address", addressBook{}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRig(t, nil, func(c *Config) { c.Policy, c.Peers = hp, tc.peers })
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			if code, _ := send(t, c, "POST", "http://"+r.addr+"/v1/request-landing", ""); code != tc.want {
				t.Errorf("POST /v1/request-landing: %d, want %d", code, tc.want)
			}
		})
	}
}
