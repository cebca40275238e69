package kvstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

// BenchmarkStore measures each backend in the same run, so their figures
// compare directly: sequential put and get latency, compare-and-swap under
// contention, write throughput with 16 writers, and watch delivery latency
// (put in one client → event in another).
func BenchmarkStore(b *testing.B) {
	for _, s := range kvstoretest.Servers(b) {
		b.Run(s.Name(), func(b *testing.B) {
			b.Run("put", func(b *testing.B) { benchPut(b, s) })
			b.Run("get", func(b *testing.B) { benchGet(b, s) })
			b.Run("cas-8-contenders", func(b *testing.B) { benchCAS(b, s) })
			b.Run("put-16-writers", func(b *testing.B) { benchThroughput(b, s) })
			b.Run("watch-latency", func(b *testing.B) { benchWatch(b, s) })
		})
	}
}

func benchPut(b *testing.B, s kvstoretest.Server) {
	c := s.NewClient(b)
	ctx := context.Background()
	key := c.Prefix() + "bench/put"
	for i := 0; b.Loop(); i++ {
		if _, err := c.Update(ctx, key, []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGet(b *testing.B, s kvstoretest.Server) {
	c := s.NewClient(b)
	ctx := context.Background()
	key := c.Prefix() + "bench/get"
	if _, err := c.Update(ctx, key, []byte("value")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.Get(ctx, key); err != nil {
			b.Fatal(err)
		}
	}
}

// benchCAS: 8 clients increment one counter with compare-and-swap; one op is
// one successful increment, conflicts are retried and reported per op.
func benchCAS(b *testing.B, s kvstoretest.Server) {
	const contenders = 8
	ctx := context.Background()
	key := s.Config().Prefix + "bench/cas"
	if _, err := s.NewClient(b).Update(ctx, key, []byte("0")); err != nil {
		b.Fatal(err)
	}
	clients := make([]kvstore.Client, contenders)
	for i := range clients {
		clients[i] = s.NewClient(b)
	}
	var left, conflicts atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				for {
					kv, err := c.Get(ctx, key)
					if err != nil {
						b.Error(err)
						return
					}
					v, _ := strconv.Atoi(string(kv.Value))
					_, err = c.CompareAndSwap(ctx, key, []byte(strconv.Itoa(v+1)), kv.Revision)
					if err == nil {
						break
					}
					if !errors.Is(err, kvstore.ErrConflict) {
						b.Error(err)
						return
					}
					conflicts.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
}

// benchThroughput: 16 writers put distinct keys; reports writes per second.
func benchThroughput(b *testing.B, s kvstoretest.Server) {
	const writers = 16
	ctx := context.Background()
	clients := make([]kvstore.Client, writers)
	for i := range clients {
		clients[i] = s.NewClient(b)
	}
	var next atomic.Int64
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				key := fmt.Sprintf("%sbench/tput/%d/%d", c.Prefix(), w, i%1000)
				if _, err := c.Update(ctx, key, []byte("v")); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
}

// benchWatch: one client puts a timestamp, another's watch delivers it; each
// put waits for its event, so this is latency, not throughput.
func benchWatch(b *testing.B, s kvstoretest.Server) {
	writer, watcher := s.NewClient(b), s.NewClient(b)
	prefix := writer.Prefix() + "bench/watch/"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := watcher.ListAndWatch(ctx, prefix)
	for ev := range events {
		if ev.Type == kvstore.EventListDone {
			break
		}
	}
	lat := make([]time.Duration, 0, b.N)
	for i := 0; b.Loop(); i++ {
		sent := time.Now()
		if _, err := writer.Update(ctx, prefix+"k", []byte(strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
		for ev := range events {
			if ev.Type == kvstore.EventUpsert && string(ev.Value) == strconv.Itoa(i) {
				lat = append(lat, time.Since(sent))
				break
			}
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
