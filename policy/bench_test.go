package policy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/weftnet/weft/state/records"
)

// benchWorld is 1,000 rules (one CiliumNetworkPolicy document each) over
// 1,000 identities, and 20 local endpoints.
type benchWorld struct {
	input     []byte
	ids       map[records.ID]records.Labels
	endpoints []records.Labels
}

func newBenchWorld() benchWorld {
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, `---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule-%d
spec:
  endpointSelector:
    matchLabels:
      app: app-%d
  ingress:
  - fromEndpoints:
    - matchLabels:
        tier: t-%d
    toPorts:
    - ports:
      - port: "%d"
        protocol: TCP
`, i, i%50, i%100, 1000+i%20)
	}
	w := benchWorld{input: []byte(b.String()), ids: map[records.ID]records.Labels{}}
	for j := range 1000 {
		w.ids[records.ClusterIdentity(1, uint32(256+j))] = pod("default", fmt.Sprintf("app=app-%d", j%50), fmt.Sprintf("tier=t-%d", j%100), fmt.Sprintf("n=%d", j))
	}
	for k := range 20 {
		w.endpoints = append(w.endpoints, pod("default", fmt.Sprintf("app=app-%d", k), "tier=t-0", fmt.Sprintf("n=ep%d", k)))
	}
	return w
}

func (w benchWorld) universe() *Universe {
	u := NewUniverse()
	for id, ls := range w.ids {
		u.Upsert(id, ls)
	}
	return u
}

// BenchmarkImport is parsing 1,000 rules and computing the policy of
// every local endpoint over 1,000 identities (the agent's work between an
// import and SetPolicy of each endpoint).
func BenchmarkImport(b *testing.B) {
	w := newBenchWorld()
	entries := 0
	for b.Loop() {
		ps, err := Parse(w.input)
		if err != nil {
			b.Fatal(err)
		}
		repo := NewRepository()
		for _, p := range ps {
			repo.Upsert(p)
		}
		u := w.universe()
		entries = 0
		for _, ep := range w.endpoints {
			entries += repo.Compute(ep, u).Entries()
		}
	}
	b.ReportMetric(float64(entries), "entries")
}

// BenchmarkIdentityAdded compares adding one identity incrementally (the
// selector cache updated, every endpoint recomputed) with the baseline of
// recomputing from scratch (a fresh universe: every selector rescanned).
func BenchmarkIdentityAdded(b *testing.B) {
	w := newBenchWorld()
	ps, err := Parse(w.input)
	if err != nil {
		b.Fatal(err)
	}
	repo := NewRepository()
	for _, p := range ps {
		repo.Upsert(p)
	}
	extra := records.ClusterIdentity(1, 5000)
	extraLabels := pod("default", "app=app-1", "tier=t-1", "n=new")
	b.Run("incremental", func(b *testing.B) {
		u := w.universe()
		for _, ep := range w.endpoints {
			repo.Compute(ep, u)
		}
		for b.Loop() {
			u.Upsert(extra, extraLabels)
			for _, ep := range w.endpoints {
				repo.Compute(ep, u)
			}
			u.Delete(extra)
		}
	})
	b.Run("baseline-full-recompute", func(b *testing.B) {
		for b.Loop() {
			u := w.universe()
			u.Upsert(extra, extraLabels)
			for _, ep := range w.endpoints {
				repo.Compute(ep, u)
			}
		}
	})
}
