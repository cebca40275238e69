package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/datapath"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
)

// benchRules is 1,000 CiliumNetworkPolicy documents: rule i applies to
// app=app-(i%20) and admits tier=t-(i%100) on TCP 1000+i%20.
func benchRules() []byte {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "---\napiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: rule-%d\nspec:\n  endpointSelector:\n    matchLabels:\n      app: app-%d\n  ingress:\n  - fromEndpoints:\n    - matchLabels:\n        tier: t-%d\n    toPorts:\n    - ports:\n      - port: \"%d\"\n        protocol: TCP\n", i, i%20, i%100, 1000+i%20)
	}
	return []byte(b.String())
}

// benchRig is a policy engine with 1,000 identities and 20 local endpoints
// (app-0 .. app-19), on embedded etcd.
func benchRig(b *testing.B) *policyRig {
	r := newPolicyRig(b, kvstoretest.StartEtcd(b))
	for j := range 1000 {
		r.putIdentity(b, records.ClusterIdentity(1, uint32(256+j)), podLabels("default", fmt.Sprintf("app=app-%d", j%20), fmt.Sprintf("tier=t-%d", j%100)))
	}
	for k := range 20 {
		ls := podLabels("default", fmt.Sprintf("app=app-%d", k), fmt.Sprintf("ep=%d", k))
		r.addEndpoint(b, uint16(k+1), records.ClusterIdentity(1, uint32(2000+k)), ls)
	}
	return r
}

// waitFor blocks until cond holds for the fake datapath's policies.
func (f *fakePolicyDatapath) waitFor(b *testing.B, what string, cond func(map[uint16]datapath.Policy) bool) {
	deadline := time.Now().Add(time.Minute)
	for {
		f.mu.Lock()
		ok := cond(f.got)
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(100 * time.Microsecond) // polling a condition, not synchronising
	}
}

// BenchmarkPolicyImport is the time from importing 1,000 rules over 1,000
// identities to every local endpoint's policy written, against the
// baseline of writing 1,000 keys to the same store and seeing them by
// watch.
func BenchmarkPolicyImport(b *testing.B) {
	r := benchRig(b)
	rules := benchRules()
	// Every endpoint is selected by 50 rules admitting 5 tiers of 10
	// identities on one port: 50 entries, and the host's.
	enforced := func(m map[uint16]datapath.Policy) bool {
		for k := range 20 {
			if len(m[uint16(k+1)].Ingress) != 51 {
				return false
			}
		}
		return true
	}
	lifted := func(m map[uint16]datapath.Policy) bool {
		for k := range 20 {
			if m[uint16(k+1)].IngressEnforced {
				return false
			}
		}
		return true
	}
	b.Run("import-to-maps", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: rules}); err != nil {
				b.Fatal(err)
			}
			r.dp.waitFor(b, "1,000 rules enforced", enforced)
			b.StopTimer()
			if err := r.deleteAllPolicies(); err != nil {
				b.Fatal(err)
			}
			r.dp.waitFor(b, "policies lifted", lifted)
			b.StartTimer()
		}
	})
	b.Run("baseline-store-1000-keys-watched", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			storeRoundTrip(b, r.store, fmt.Sprintf("%sbench/%d/", r.store.Prefix(), i), 1000)
		}
	})
}

// BenchmarkPolicyIdentityAdded is the time from a new identity in the
// store to the endpoint whose rules select it having it in its policy,
// against the baseline of one key written and seen by watch.
func BenchmarkPolicyIdentityAdded(b *testing.B) {
	r := benchRig(b)
	if _, err := r.api.Import(context.Background(), &agentapi.ImportPolicyRequest{Documents: benchRules()}); err != nil {
		b.Fatal(err)
	}
	r.dp.waitFor(b, "rules enforced", func(m map[uint16]datapath.Policy) bool { return len(m[1].Ingress) == 51 })
	b.Run("identity-to-map", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			id := records.ClusterIdentity(1, uint32(10000+i%50000))
			// tier=t-1 is admitted by rule 1, which applies to app-1 (endpoint 2).
			r.putIdentity(b, id, podLabels("default", "app=other", "tier=t-1", fmt.Sprintf("n=%d", i)))
			want := datapath.Rule{Identity: uint32(id), Port: 1001, Proto: datapath.ProtoTCP}
			r.dp.waitFor(b, "new identity admitted", func(m map[uint16]datapath.Policy) bool { return slices.Contains(m[2].Ingress, want) })
			b.StopTimer()
			if err := r.store.Delete(context.Background(), r.keys.Identity(id)); err != nil {
				b.Fatal(err)
			}
			r.dp.waitFor(b, "identity gone", func(m map[uint16]datapath.Policy) bool { return !slices.Contains(m[2].Ingress, want) })
			b.StartTimer()
		}
	})
	b.Run("baseline-store-1-key-watched", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			storeRoundTrip(b, r.store, fmt.Sprintf("%sbench1/%d/", r.store.Prefix(), i), 1)
		}
	})
}

func (r *policyRig) deleteAllPolicies() error {
	kvs, err := r.store.List(context.Background(), r.keys.PoliciesPrefix())
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if err := r.store.Delete(context.Background(), kv.Key); err != nil {
			return err
		}
	}
	return nil
}

// storeRoundTrip writes n keys under prefix and waits until a watch has
// seen them all.
func storeRoundTrip(b *testing.B, c kvstore.Client, prefix string, n int) {
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
