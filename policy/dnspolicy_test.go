package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/fqdn"
	"github.com/weftnet/weft/state/records"
)

const fqdnDoc = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: fqdn
  namespace: default
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        app: dns
    toPorts:
    - ports:
      - port: "53"
        protocol: ANY
      rules:
        dns:
        - matchPattern: "*.example"
        - matchName: api.github.com
  - toFQDNs:
    - matchName: allowed.example
    toPorts:
    - ports:
      - port: "443"
        protocol: TCP
`

// TestComputeDNSAndFQDN: the DNS rule redirects UDP 53 to the DNS server
// (TCP 53 stays closed: DNS over TCP is not proxied), the DNS policy
// allows the names of the rule asked of that server only, and toFQDNs
// selects the /32 CIDR identities of the addresses learnt for its name,
// once they are among the universe's CIDRs.
func TestComputeDNSAndFQDN(t *testing.T) {
	ps, err := Parse([]byte(fqdnDoc))
	if err != nil {
		t.Fatal(err)
	}
	repo := NewRepository()
	repo.Upsert(ps[0])
	u := NewUniverse()
	client, dns := pod("default", "app=client"), pod("default", "app=dns")
	u.Upsert(300, client)
	u.Upsert(301, dns)

	cache := fqdn.NewCache(0)
	now := time.Now()
	cache.Observe(netip.Addr{}, "allowed.example", []netip.Addr{netip.MustParseAddr("192.0.2.7")}, time.Minute, now)
	cache.Observe(netip.Addr{}, "other.example", []netip.Addr{netip.MustParseAddr("192.0.2.8")}, time.Minute, now)
	u.SetFQDNLookup(func(m *fqdn.Matcher) []netip.Addr { return cache.Lookup(m, now) })

	got := repo.Compute(client, u).Policy
	want := []datapath.Rule{{Identity: 301, Port: 53, Proto: datapath.ProtoUDP, Redirect: true}}
	if !got.EgressEnforced || fmt.Sprint(got.Egress) != fmt.Sprint(want) {
		t.Errorf("egress before the address has an identity: %v, want %v", got.Egress, want)
	}
	if ms := repo.FQDNMatchers(); len(ms) != 1 || ms[0].Selector().MatchName != "allowed.example" {
		t.Fatalf("FQDN matchers: %v", ms)
	}
	cidrs := NewCIDRIdentities()
	cidrs.Sync([]netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("192.0.2.8/32")})
	u.SetCIDRs(cidrs.All())
	id7 := uint32(cidrs.All()[netip.MustParsePrefix("192.0.2.7/32")])
	got = repo.Compute(client, u).Policy
	want = append(want, datapath.Rule{Identity: id7, Port: 443, Proto: datapath.ProtoTCP})
	slices.SortFunc(want, func(a, b datapath.Rule) int { return int(a.Identity) - int(b.Identity) })
	if fmt.Sprint(got.Egress) != fmt.Sprint(want) {
		t.Errorf("egress: %v, want %v (only allowed.example's address, not other.example's)", got.Egress, want)
	}

	pols := repo.ComputeDNS(client, u)
	if len(pols) != 1 || pols[53] == nil {
		t.Fatalf("DNS policies: %v, want one on port 53", pols)
	}
	for _, tc := range []struct {
		peer records.ID
		name string
		want bool
	}{
		{301, "allowed.example", true},
		{301, "a.other.example", false}, // * is one label
		{301, "api.github.com", true},
		{301, "github.com", false},
		{records.IDWorld, "allowed.example", false}, // another server
	} {
		if got := pols[53].Allows(tc.peer, tc.name); got != tc.want {
			t.Errorf("DNS policy: %s via %d allowed %t, want %t", tc.name, tc.peer, got, tc.want)
		}
	}
	if (*DNSPolicy)(nil).Allows(301, "allowed.example") {
		t.Error("no DNS policy allows a query")
	}
}

// TestCIDRLongest: the L7 proxy names a peer by the longest policy prefix
// holding it, as the datapath's LPM ipcache does.
func TestCIDRLongest(t *testing.T) {
	c := NewCIDRIdentities()
	c.Sync([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("192.0.2.7/32")})
	all := c.All()
	for ip, want := range map[string]netip.Prefix{"192.0.2.7": netip.MustParsePrefix("192.0.2.7/32"), "192.0.2.8": netip.MustParsePrefix("192.0.2.0/24")} {
		if id, ok := c.Longest(netip.MustParseAddr(ip)); !ok || id != all[want] {
			t.Errorf("Longest(%s) = %d, %v; want %d (%s)", ip, id, ok, all[want], want)
		}
	}
	if _, ok := c.Longest(netip.MustParseAddr("198.51.100.1")); ok {
		t.Error("Longest(198.51.100.1): an address no prefix holds has an identity")
	}
}
