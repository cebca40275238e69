package policy

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/state/records"
)

// pod returns the identity labels the agent gives a pod.
func pod(ns string, kv ...string) records.Labels {
	ls := []string{"k8s:io.kubernetes.pod.namespace=" + ns, "k8s:io.cilium.k8s.policy.cluster=c1"}
	for _, l := range kv {
		ls = append(ls, "k8s:"+l)
	}
	return records.MustParseLabels(ls...)
}

func repoOf(t testing.TB, files ...string) *Repository {
	t.Helper()
	r := NewRepository()
	for _, f := range files {
		ps, err := Parse(readFile(t, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			r.Upsert(p)
		}
	}
	return r
}

func allow(id records.ID, port uint16, proto uint8) datapath.Rule {
	return datapath.Rule{Identity: uint32(id), Port: port, Proto: proto}
}

func deny(id records.ID, port uint16, proto uint8) datapath.Rule {
	return datapath.Rule{Identity: uint32(id), Port: port, Proto: proto, Deny: true}
}

func TestCompute(t *testing.T) {
	u := NewUniverse()
	ids := map[string]records.ID{}
	for i, l := range []struct {
		name string
		ls   records.Labels
	}{
		{"deathstar", pod("default", "org=empire", "class=deathstar")},
		{"tiefighter", pod("default", "org=empire", "class=tiefighter")},
		{"xwing", pod("default", "org=alliance", "class=xwing")},
		{"a-frontend", pod("team-a", "app=frontend")},
		{"a-db", pod("team-a", "app=db")},
		{"b-api", pod("team-b", "app=api")},
		{"b-other", pod("team-b", "app=other")},
		{"client", pod("default", "role=client")},
		{"web", pod("default", "app=web")},
	} {
		id := records.ClusterIdentity(1, uint32(256+i))
		ids[l.name] = id
		u.Upsert(id, l.ls)
	}
	labels := func(name string) records.Labels { return u.ids[ids[name]] }
	cidrs := NewCIDRIdentities()
	repoCIDR := repoOf(t, "cidr-entities.yaml")
	cidrs.Sync(repoCIDR.Prefixes())
	u.SetCIDRs(cidrs.All())
	cidr := func(s string) records.ID { return cidrs.All()[netip.MustParsePrefix(s)] }

	for _, tc := range []struct {
		name     string
		repo     *Repository
		endpoint string
		want     datapath.Policy
	}{
		{"deathstar admits the empire on 80/TCP", repoOf(t, "deathstar.yaml"), "deathstar", datapath.Policy{
			IngressEnforced: true, Ingress: []datapath.Rule{allow(ids["deathstar"], 80, 6), allow(ids["tiefighter"], 80, 6)}}},
		{"deathstar policy leaves the xwing alone", repoOf(t, "deathstar.yaml"), "xwing", datapath.Policy{}},
		{"team-a admits its own namespace", repoOf(t, "team-isolation.yaml"), "a-db", datapath.Policy{
			IngressEnforced: true, Ingress: []datapath.Rule{allow(ids["a-frontend"], 0, 0), allow(ids["a-db"], 0, 0)}}},
		{"team-b api admits team-a frontend", repoOf(t, "team-isolation.yaml"), "b-api", datapath.Policy{
			IngressEnforced: true, Ingress: []datapath.Rule{allow(ids["a-frontend"], 0, 0)}}},
		{"team-b others are not selected", repoOf(t, "team-isolation.yaml"), "b-other", datapath.Policy{}},
		{"k8s: team-a admits its own namespace", repoOf(t, "team-isolation-k8s.yaml"), "a-frontend", datapath.Policy{
			IngressEnforced: true, Ingress: []datapath.Rule{allow(ids["a-frontend"], 0, 0), allow(ids["a-db"], 0, 0)}}},
		{"k8s: team-b api admits team-a frontend on 8080-8081", repoOf(t, "team-isolation-k8s.yaml"), "b-api", datapath.Policy{
			IngressEnforced: true, Ingress: []datapath.Rule{allow(ids["a-frontend"], 8080, 6), allow(ids["a-frontend"], 8081, 6)}}},
		{"CIDR except, entities, deny", repoCIDR, "client", datapath.Policy{
			IngressEnforced: true, EgressEnforced: true,
			Ingress: []datapath.Rule{allow(records.IDWorld, 0, 0), allow(cidr("192.0.2.0/24"), 0, 0), allow(cidr("192.0.2.128/25"), 0, 0), allow(cidr("198.51.100.7/32"), 0, 0)},
			Egress: slices.Concat(
				[]datapath.Rule{allow(records.IDHost, 0, 0), allow(records.IDRemoteNode, 0, 0)},
				portRules(ids["b-api"], 8000, 8003), []datapath.Rule{deny(ids["b-api"], 8001, 6)},
				portRules(ids["web"], 8000, 8003),
				[]datapath.Rule{allow(cidr("192.0.2.0/24"), 0, 0)})},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.repo.Compute(labels(tc.endpoint), u).Policy
			if tc.want.IngressEnforced {
				tc.want.Ingress = append(tc.want.Ingress, allow(records.IDHost, 0, 0)) // allow-localhost
			}
			tc.want.Ingress, tc.want.Egress = sorted(tc.want.Ingress), sorted(tc.want.Egress)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func sorted(rs []datapath.Rule) []datapath.Rule {
	m := map[datapath.Rule]bool{}
	for _, r := range rs {
		m[r] = true
	}
	return sortedRules(m)
}

// portRules are the allow entries of port..end for TCP and UDP.
func portRules(id records.ID, port, end uint16) []datapath.Rule {
	var out []datapath.Rule
	for p := port; p <= end; p++ {
		out = append(out, allow(id, p, 6), allow(id, p, 17))
	}
	return out
}

func TestComputeFollowsIdentities(t *testing.T) {
	repo := repoOf(t, "deathstar.yaml")
	u := NewUniverse()
	star := pod("default", "org=empire", "class=deathstar")
	u.Upsert(records.ClusterIdentity(1, 300), star)
	if got := len(repo.Compute(star, u).Policy.Ingress); got != 2 {
		t.Fatalf("got %d ingress entries, want 2 (the deathstar itself and the host)", got)
	}
	fighter := records.ClusterIdentity(1, 301)
	u.Upsert(fighter, pod("default", "org=empire", "class=tiefighter"))
	if got := repo.Compute(star, u).Policy.Ingress; !slices.Contains(got, allow(fighter, 80, 6)) {
		t.Errorf("new matching identity not allowed: %v", got)
	}
	u.Upsert(fighter, pod("default", "org=alliance"))
	if got := repo.Compute(star, u).Policy.Ingress; slices.Contains(got, allow(fighter, 80, 6)) {
		t.Errorf("identity whose labels stopped matching still allowed: %v", got)
	}
	u.Upsert(fighter, pod("default", "org=empire"))
	u.Delete(fighter)
	if got := repo.Compute(star, u).Policy.Ingress; slices.Contains(got, allow(fighter, 80, 6)) {
		t.Errorf("deleted identity still allowed: %v", got)
	}
}

// TestIncrementalMatchesFresh changes identities at random and checks the
// cached selections always equal a fresh computation.
func TestIncrementalMatchesFresh(t *testing.T) {
	repo := repoOf(t, "deathstar.yaml", "team-isolation.yaml", "team-isolation-k8s.yaml", "cidr-entities.yaml")
	rng := rand.New(rand.NewPCG(1, 2))
	nss := []string{"default", "team-a", "team-b"}
	apps := []string{"org=empire", "app=frontend", "app=api", "app=web", "role=client", "class=deathstar"}
	random := func() records.Labels {
		return pod(nss[rng.IntN(len(nss))], apps[rng.IntN(len(apps))], fmt.Sprintf("n=%d", rng.IntN(3)))
	}
	u := NewUniverse()
	subject := pod("team-b", "app=api")
	for step := range 300 {
		id := records.ClusterIdentity(1, uint32(256+rng.IntN(40)))
		if rng.IntN(3) == 0 {
			u.Delete(id)
		} else {
			u.Upsert(id, random())
		}
		if step%10 != 0 {
			continue
		}
		fresh := NewUniverse()
		for id, ls := range u.ids {
			fresh.Upsert(id, ls)
		}
		for _, s := range []records.Labels{subject, pod("team-a", "app=db"), pod("default", "role=client", "org=empire", "class=deathstar")} {
			got, want := repo.Compute(s, u).Policy, repo.Compute(s, fresh).Policy
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("step %d: incremental %v, fresh %v", step, got, want)
			}
		}
	}
}

func TestSelector(t *testing.T) {
	host, _ := records.ReservedLabels(records.IDHost)
	web := pod("default", "app=web", "tier=front")
	for _, tc := range []struct {
		name string
		req  Requirement
		ls   records.Labels
		want bool
	}{
		{"any source matches k8s", Requirement{Source: SourceAny, Key: "app", Op: OpIn, Values: []string{"web"}}, web, true},
		{"other source does not", Requirement{Source: "container", Key: "app", Op: OpIn, Values: []string{"web"}}, web, false},
		{"in with several values", Requirement{Source: "k8s", Key: "app", Op: OpIn, Values: []string{"api", "web"}}, web, true},
		{"notin", Requirement{Source: "k8s", Key: "app", Op: OpNotIn, Values: []string{"web"}}, web, false},
		{"notin of a missing key", Requirement{Source: "k8s", Key: "x", Op: OpNotIn, Values: []string{"web"}}, web, true},
		{"exists", Requirement{Source: "k8s", Key: "tier", Op: OpExists}, web, true},
		{"does not exist", Requirement{Source: "k8s", Key: "tier", Op: OpDoesNotExist}, web, false},
		{"reserved host", Requirement{Source: "reserved", Key: "host", Op: OpIn, Values: []string{""}}, host, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Selector{Requirements: []Requirement{tc.req}}).Matches(tc.ls); got != tc.want {
				t.Errorf("%s on %s: got %v, want %v", tc.req, tc.ls, got, tc.want)
			}
		})
	}
	u := NewUniverse()
	u.Upsert(records.ClusterIdentity(1, 256), web)
	if got := u.selectEndpoints(Selector{}); len(got) != 1 {
		t.Errorf("empty selector selected %v, want only the cluster identity", got)
	}
	sel := newSelector([]Requirement{{Source: "reserved", Key: "host", Op: OpIn, Values: []string{""}}})
	if got := u.selectEndpoints(sel); len(got) != 1 || !hasID(got, records.IDHost) {
		t.Errorf("reserved:host selected %v", got)
	}
}

func hasID(s idSet, id records.ID) bool { _, ok := s[id]; return ok }

func TestCIDRIdentities(t *testing.T) {
	c := NewCIDRIdentities()
	a := netip.MustParsePrefix("10.0.0.0/8")
	b := netip.MustParsePrefix("10.1.0.0/16")
	added, _ := c.Sync([]netip.Prefix{a, b, netip.MustParsePrefix("0.0.0.0/0")})
	if len(added) != 2 || !IsCIDRIdentity(added[a]) || added[a] == added[b] {
		t.Fatalf("added %v", added)
	}
	idB := added[b]
	added, removed := c.Sync([]netip.Prefix{b})
	if len(added) != 0 || len(removed) != 1 || c.All()[b] != idB {
		t.Errorf("second sync: added %v removed %v all %v", added, removed, c.All())
	}
	if IsCIDRIdentity(records.ClusterIdentity(255, 65535)) {
		t.Error("the largest cluster identity is taken for a CIDR identity")
	}
}

func TestClusterEntityIsLocal(t *testing.T) {
	ps, err := Parse([]byte(header + "spec:\n  endpointSelector: {}\n  ingress:\n  - fromEntities: [cluster]\n"))
	if err != nil {
		t.Fatal(err)
	}
	repo := NewRepository()
	repo.Upsert(ps[0])
	u := NewUniverse()
	local, remote := records.ClusterIdentity(1, 256), records.ClusterIdentity(2, 256)
	u.Upsert(local, pod("default", "app=a"))
	u.Upsert(remote, pod("default", "app=b"))
	u.SetLocalCluster(1)
	got := repo.Compute(pod("default", "app=a"), u).Policy.Ingress
	if !slices.Contains(got, allow(local, 0, 0)) || slices.Contains(got, allow(remote, 0, 0)) || !slices.Contains(got, allow(records.IDRemoteNode, 0, 0)) {
		t.Errorf("cluster entity: %v", got)
	}
}
