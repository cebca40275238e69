package state

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/ipcache"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

const cluster = "c1"

func entryFor(i int) records.IPCacheEntry {
	return records.IPCacheEntry{
		IP:        netip.AddrFrom4([4]byte{10, byte(100 + i>>16), byte(i >> 8), byte(i)}),
		Identity:  records.ClusterIdentity(1, 256+uint32(i%60000)),
		HostIP:    netip.AddrFrom4([4]byte{192, 168, byte(i >> 8 % 4), byte(i % 250)}),
		Namespace: "default", Pod: fmt.Sprintf("pod-%d", i),
	}
}

// BenchmarkIPCachePropagation measures the time from a publish in one
// client to the change event in each of 100 watchers (10 per client: a
// Consul agent refuses more than 200 connections per address, and every
// Consul watch holds one). Goal: p99 < 20 ms.
func BenchmarkIPCachePropagation(b *testing.B) {
	eachBackend(b, func(b *testing.B, s kvstoretest.Server) {
		b.Run("watchers-100", func(b *testing.B) {
			const watchers = 100
			fill(b, s, 0) // the synced canary, so watchers stop watching it
			var mu sync.Mutex
			sent := map[netip.Addr]time.Time{}
			var lat, commit []time.Duration
			var got atomic.Int64
			var wc kvstore.Client
			for i := range watchers {
				if i%10 == 0 {
					wc = s.NewClient(b)
				}
				w, err := ipcache.NewWatcher(wc, cluster, func(ch ipcache.Change) {
					now := time.Now()
					mu.Lock()
					if t0, ok := sent[ch.Entry.IP]; ok && ch.Type == ipcache.Upsert {
						lat = append(lat, now.Sub(t0))
					}
					mu.Unlock()
					got.Add(1)
				}, statetest.Logger(b))
				if err != nil {
					b.Fatal(err)
				}
				statetest.Go(b, w.Run)
			}
			pub := s.NewClient(b, benchClient)
			keys := records.NewKeys(pub.Prefix())
			ctx := context.Background()
			rounds := max(b.N, 300)
			b.ResetTimer()
			for i := range rounds {
				e := entryFor(i)
				key := keys.IPCache(cluster, e.IP)
				val, err := records.Encode(key, &e)
				if err != nil {
					b.Fatal(err)
				}
				before := got.Load()
				mu.Lock()
				sent[e.IP] = time.Now()
				mu.Unlock()
				t0 := time.Now()
				if _, err := pub.Update(ctx, key, val, kvstore.Leased()); err != nil {
					b.Fatal(err)
				}
				commit = append(commit, time.Since(t0))
				statetest.Eventually(b, 30*time.Second, "all watchers see the entry", func() error {
					if n := got.Load() - before; n < watchers {
						return fmt.Errorf("%d of %d", n, watchers)
					}
					return nil
				})
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			// Baseline: how long the publishing write itself took.
			slices.Sort(commit)
			b.ReportMetric(ms(commit[len(commit)/2]), "write-p50-ms")
			b.ReportMetric(ms(commit[len(commit)*99/100]), "write-p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	})
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkIPCacheBootstrap measures a new watcher loading 100k entries:
// seconds until synced and heap bytes per entry it holds afterwards. Goal:
// < 3 s and < 1 KiB per entry.
func BenchmarkIPCacheBootstrap(b *testing.B) {
	eachBackend(b, func(b *testing.B, s kvstoretest.Server) {
		b.Run("entries-100k", func(b *testing.B) {
			const n = 100000
			fill(b, s, n)
			var secs, perEntry float64
			for range max(b.N, 1) {
				c := s.NewClient(b)
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				start := time.Now()
				w, err := ipcache.NewWatcher(c, cluster, nil, statetest.Logger(b))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- w.Run(ctx) }()
				select {
				case <-w.Synced():
				case <-time.After(2 * time.Minute):
					b.Fatal("watcher not synced within 2 minutes")
				}
				secs = time.Since(start).Seconds()
				if w.Len() != n {
					b.Fatalf("watcher holds %d entries, want %d", w.Len(), n)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perEntry = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
				runtime.KeepAlive(w)
				cancel()
				<-done
			}
			b.ReportMetric(secs, "s")
			b.ReportMetric(perEntry, "B/entry")
			b.ReportMetric(0, "ns/op")
		})
	})
}

// fill writes n entries and the synced canary with 32 writers.
func fill(b *testing.B, s kvstoretest.Server, n int) {
	b.Helper()
	c := s.NewClient(b, benchClient)
	keys := records.NewKeys(c.Prefix())
	ctx := context.Background()
	var next atomic.Int64
	var g errgroup.Group
	for range 32 {
		g.Go(func() error {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				e := entryFor(i)
				key := keys.IPCache(cluster, e.IP)
				val, err := records.Encode(key, &e)
				if err != nil {
					return err
				}
				if _, err := c.Update(ctx, key, val); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	key := keys.Synced(cluster, records.KindIPCache)
	val, err := records.Encode(key, &records.Synced{Time: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Update(ctx, key, val); err != nil {
		b.Fatal(err)
	}
}
