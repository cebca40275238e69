package l7bench

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// Load sends b.N GETs of url with c from clients goroutines (keep-alive:
// c's transport should keep clients idle connections), expects 200 with
// size bytes each, and reports requests per second and the 50th and 99th
// percentiles of latency. One request per client opens the connections
// before the timer starts.
func Load(b *testing.B, c *http.Client, url string, size, clients int) {
	b.Helper()
	get := func() (time.Duration, error) {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || int(n) != size) {
			err = fmt.Errorf("GET %s: got %d with %d bytes, expected 200 with %d", url, resp.StatusCode, n, size)
		}
		return time.Since(start), err
	}
	var wg sync.WaitGroup
	warm := make(chan error, clients)
	for range clients { // open the connections (concurrently) before measuring
		wg.Add(1)
		go func() { defer wg.Done(); _, err := get(); warm <- err }()
	}
	wg.Wait()
	close(warm)
	for err := range warm {
		if err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var (
		mu       sync.Mutex
		firstErr error
	)
	next := make(chan int, b.N)
	for i := range b.N {
		next <- i
	}
	close(next)
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				d, err := get()
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
