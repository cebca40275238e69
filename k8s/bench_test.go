package k8s_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/k8s/k8stest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// benchSize is WEFT_BENCH_K8S_PODS pods and half as many Services (default
// 2000 and 1000; the figure is 10k + 5k).
func benchSize() (pods, svcs int) {
	pods = 2000
	if v, err := strconv.Atoi(os.Getenv("WEFT_BENCH_K8S_PODS")); err == nil && v > 0 {
		pods = v
	}
	return pods, pods / 2
}

// BenchmarkMirrorBootstrap: a fresh store filled from Kubernetes (list,
// convert, write, synced markers) against writing the same number of
// pre-encoded records straight into the store (the baseline). It also
// reports the heap the source holds once synced.
func BenchmarkMirrorBootstrap(b *testing.B) {
	c := k8stest.Start(b)
	ctx := context.Background()
	pods, svcs := benchSize()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range pods {
		g.Go(func() error {
			_, err := c.Client.CoreV1().Pods("default").Create(gctx, pod("default", fmt.Sprintf("p%d", i), map[string]string{"app": fmt.Sprintf("a%d", i%svcs)}), metav1.CreateOptions{})
			return err
		})
	}
	for i := range svcs {
		g.Go(func() error {
			_, err := c.Client.CoreV1().Services("default").Create(gctx, service("default", fmt.Sprintf("a%d", i), nil), metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("create objects: %v", err)
	}
	srv := kvstoretest.StartEtcd(b)
	n := pods + svcs

	b.Run("store-writes/bootstrap", func(b *testing.B) {
		val := []byte(`{"v":1,"cluster":"c1","namespace":"default","name":"p","labels":{"app":"a"},"node":"n1","phase":"Pending","source":"kubernetes"}`)
		for i := range b.N {
			store := srv.NewClient(b, statetest.Unlimited, func(cfg *kvstore.Config) { cfg.Prefix = fmt.Sprintf("base%d/", i) })
			for j := range n {
				if _, err := store.Update(ctx, fmt.Sprintf("base%d/k/%d", i, j), val); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("k8s-mirror/bootstrap", func(b *testing.B) {
		var heap uint64
		for i := range b.N {
			store := srv.NewClient(b, statetest.Unlimited, func(cfg *kvstore.Config) { cfg.Prefix = fmt.Sprintf("mirror%d/", i) })
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			cfg := k8s.DefaultConfig()
			cfg.Enabled, cfg.Cluster, cfg.Identity, cfg.LeaseName = true, cluster, "bench", fmt.Sprintf("bench-%d", i)
			cfg.WriteQPS, cfg.WriteBurst = 1e6, 1e6
			src, err := k8s.New(cfg, c.Config, store, statetest.Logger(b))
			if err != nil {
				b.Fatal(err)
			}
			synced := make(chan struct{})
			left := 4
			src.OnSynced(func(_ context.Context, _ string) {
				if left--; left == 0 {
					close(synced)
				}
			})
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { defer close(done); src.Run(rctx) }()
			select {
			case <-synced:
			case <-time.After(10 * time.Minute):
				b.Fatal("not synced within 10 minutes")
			}
			b.StopTimer()
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			heap = max(heap, after.HeapInuse-min(after.HeapInuse, before.HeapInuse))
			cancel()
			<-done
			if kvs, err := store.List(ctx, records.NewKeys(store.Prefix()).PodsPrefix(cluster)); err != nil || len(kvs) != pods {
				b.Fatalf("%d pod records, want %d (%v)", len(kvs), pods, err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
	})
}
