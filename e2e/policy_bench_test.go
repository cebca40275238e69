package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/dial"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/testenv"
)

// policyBench is two tunnel-mode nodes with ten pods (app-0 .. app-9) and
// 1,000 extra identities written straight into the cluster's store.
type policyBench struct {
	e     *testenv.Env
	store kvstore.Client
	keys  records.Keys
	pods  []testenv.Pod
}

func newPolicyBench(b *testing.B) *policyBench {
	spec := testenv.DefaultSpec()
	e := up(b, "polbench", spec)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pb := &policyBench{e: e}
	for k := range 10 {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: fmt.Sprintf("app-%d", k), Node: e.Nodes[k%2].Name, Labels: map[string]string{"app": fmt.Sprintf("app-%d", k)}})
		if err != nil {
			b.Fatal(err)
		}
		pb.pods = append(pb.pods, p)
	}
	cfg := kvstore.DefaultConfig()
	cfg.Backend, cfg.Endpoints, cfg.RateLimit = e.KVStore, e.Clusters[0].HostStoreEndpoints, kvstore.RateLimit{}
	var err error
	if pb.store, err = dial.Open(ctx, cfg, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { pb.store.Close(context.Background()) })
	pb.keys = records.NewKeys(pb.store.Prefix())
	for j := range 1000 {
		pb.putIdentity(b, records.ClusterIdentity(1, uint32(20000+j)), fmt.Sprintf("app=other-%d", j%10), fmt.Sprintf("tier=t-%d", j%100))
	}
	return pb
}

func (pb *policyBench) putIdentity(b *testing.B, id records.ID, labels ...string) {
	ls := []string{"k8s:io.kubernetes.pod.namespace=default", "k8s:io.cilium.k8s.policy.cluster=" + pb.e.Clusters[0].Name}
	for _, l := range labels {
		ls = append(ls, "k8s:"+l)
	}
	key := pb.keys.Identity(id)
	v, err := records.Encode(key, &records.Identity{ID: id, Labels: records.MustParseLabels(ls...)})
	if err == nil {
		_, err = pb.store.Update(context.Background(), key, v)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// rules is 1,000 policies: rule i applies to app-(i%10) and admits
// tier t-(i%100) on TCP 1000+i%20, so each pod admits 10 tiers of 10
// identities: 100 policy entries per endpoint, and the host's.
func rules() []byte {
	var s strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&s, "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: rule-%d\nspec:\n  endpointSelector:\n    matchLabels:\n      app: app-%d\n  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        tier: t-%d\n    toPorts:\n    - ports:\n      - port: \"%d\"\n        protocol: TCP\n", i, i%10, i%100, 1000+i%20)
	}
	return []byte(s.String())
}

// waitPolicies polls every pod's effective policy until ok holds for all.
func (pb *policyBench) waitPolicies(b *testing.B, what string, ok func(pod string, p *agentapi.EndpointPolicy) bool) {
	deadline := time.Now().Add(2 * time.Minute)
	for _, p := range pb.pods {
		c, closeFn, err := pb.e.Agent(context.Background(), p.Node)
		if err != nil {
			b.Fatal(err)
		}
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ep, err := c.GetEndpoint(ctx, &agentapi.GetEndpointRequest{Ip: p.IP})
			cancel()
			if err == nil && ok(p.Name, ep.GetPolicy()) {
				break
			}
			if time.Now().After(deadline) {
				closeFn()
				b.Fatalf("%s: pod %s not there after 2 minutes (%v)", what, p.Name, err)
			}
			time.Sleep(2 * time.Millisecond) // polling a condition, not synchronising
		}
		closeFn()
	}
}

func (pb *policyBench) policyClient(b *testing.B) (agentapi.PolicyClient, func()) {
	conn, err := pb.e.Conn(pb.e.Nodes[0].Name)
	if err != nil {
		b.Fatal(err)
	}
	return agentapi.NewPolicyClient(conn), func() { conn.Close() }
}

func (pb *policyBench) deleteAll(b *testing.B) {
	kvs, err := pb.store.List(context.Background(), pb.keys.PoliciesPrefix())
	if err != nil {
		b.Fatal(err)
	}
	for _, kv := range kvs {
		if err := pb.store.Delete(context.Background(), kv.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyImport is the time from importing 1,000 rules over 1,000
// identities to every endpoint's BPF policy written (seen in its effective
// policy), against writing 1,000 keys to the same store and watching them.
// A second part is the time from one new identity in the store to the
// endpoint whose rules select it admitting it, against one key's round trip.
func BenchmarkPolicyImport(b *testing.B) {
	pb := newPolicyBench(b)
	pc, closeFn := pb.policyClient(b)
	defer closeFn()
	doc := rules()
	enforced := func(_ string, p *agentapi.EndpointPolicy) bool { return p != nil && len(p.GetRules()) == 101 }
	lifted := func(_ string, p *agentapi.EndpointPolicy) bool { return p == nil }
	b.Run("import-1000-rules-to-bpf", func(b *testing.B) {
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := pc.Import(ctx, &agentapi.ImportPolicyRequest{Documents: doc})
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			pb.waitPolicies(b, "1,000 rules enforced", enforced)
			b.StopTimer()
			pb.deleteAll(b)
			pb.waitPolicies(b, "policies lifted", lifted)
			b.StartTimer()
		}
	})
	b.Run("baseline-store-1000-keys-watched", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			roundTrip(b, pb.store, fmt.Sprintf("%sbench/%d/", pb.store.Prefix(), i), 1000)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	_, err := pc.Import(ctx, &agentapi.ImportPolicyRequest{Documents: doc})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	pb.waitPolicies(b, "1,000 rules enforced", enforced)
	one := pb.pods[1:2] // app-1 admits tier t-1 (rule 1)
	b.Run("identity-added-to-bpf", func(b *testing.B) {
		all := pb.pods
		pb.pods = one
		defer func() { pb.pods = all }()
		for i := 0; b.Loop(); i++ {
			id := records.ClusterIdentity(1, uint32(40000+i%20000))
			pb.putIdentity(b, id, "app=new", "tier=t-1", fmt.Sprintf("n=%d", i))
			has := func(_ string, p *agentapi.EndpointPolicy) bool {
				return slices.ContainsFunc(p.GetRules(), func(r *agentapi.PolicyRule) bool { return r.GetIdentity() == uint32(id) })
			}
			pb.waitPolicies(b, "new identity admitted", has)
			b.StopTimer()
			if err := pb.store.Delete(context.Background(), pb.keys.Identity(id)); err != nil {
				b.Fatal(err)
			}
			pb.waitPolicies(b, "identity gone", func(n string, p *agentapi.EndpointPolicy) bool { return !has(n, p) })
			b.StartTimer()
		}
	})
	b.Run("baseline-store-1-key-watched", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			roundTrip(b, pb.store, fmt.Sprintf("%sbench1/%d/", pb.store.Prefix(), i), 1)
		}
	})
}

// roundTrip writes n keys under prefix and waits until a watch saw them.
func roundTrip(b *testing.B, c kvstore.Client, prefix string, n int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.ListAndWatch(ctx, prefix)
	for ev := range events {
		if ev.Type == kvstore.EventListDone {
			break
		}
	}
	for i := range n {
		if _, err := c.Update(ctx, fmt.Sprintf("%s%d", prefix, i), []byte("x")); err != nil {
			b.Fatal(err)
		}
	}
	seen := 0
	for ev := range events {
		if ev.Type == kvstore.EventUpsert {
			if seen++; seen == n {
				return
			}
		}
	}
}
