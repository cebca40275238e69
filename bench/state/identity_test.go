package state

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/identity"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// BenchmarkIdentities measures new identities per second: every operation
// allocates a label set never seen before, spread over N allocators (each
// its own client and node) working at once. Goal (issue 17): ≥ 2,000/s
// with 8 allocators on embedded etcd, ≥ 500/s on Consul; figures in
// docs/performance.md.
func BenchmarkIdentities(b *testing.B) {
	var seq atomic.Int64
	eachBackend(b, func(b *testing.B, s kvstoretest.Server) {
		for _, n := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("allocators-%d", n), func(b *testing.B) {
				allocs := make([]*identity.Allocator, n)
				for i := range allocs {
					cfg := identity.DefaultConfig()
					cfg.Cluster, cfg.ClusterID, cfg.Node = "c1", 1, fmt.Sprintf("bench-%d-%d", n, i)
					a, err := identity.New(s.NewClient(b, benchClient), cfg, statetest.Logger(b))
					if err != nil {
						b.Fatal(err)
					}
					statetest.Go(b, a.Run)
					allocs[i] = a
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				// Enough work for a stable rate, but at most ~20 s of it (Consul
				// with many allocators manages only a few dozen per second).
				total := max(b.N, 2000)
				stop := time.Now().Add(20 * time.Second)
				var next, done atomic.Int64
				b.ResetTimer()
				start := time.Now()
				g, gctx := errgroup.WithContext(ctx)
				for _, a := range allocs {
					g.Go(func() error {
						for next.Add(1) <= int64(total) && time.Now().Before(stop) {
							l := records.MustParseLabels(fmt.Sprintf("k8s:app=bench-%d", seq.Add(1)))
							if _, err := a.Allocate(gctx, l); err != nil {
								return err
							}
							done.Add(1)
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					b.Fatal(err)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(done.Load())/elapsed.Seconds(), "ids/s")
				b.ReportMetric(0, "ns/op")

			})
		}
	})
}
