package l7bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
	"github.com/weftnet/weft/proxy/httpproxy"
)

// clients is how many keep-alive clients send at once.
const clients = 8

// BenchmarkHTTPProxy sends b.N GETs with 1 KiB responses, spread over
// concurrent keep-alive clients, directly (the baseline), through
// httputil.ReverseProxy and through the L7 proxy (rule GET /public/.*,
// flow records into a ring).
func BenchmarkHTTPProxy(b *testing.B) {
	body := strings.Repeat("x", 1024)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	defer backend.Close()
	backendAddr := netip.MustParseAddrPort(backend.Listener.Addr().String())

	target, _ := url.Parse(backend.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: clients * 2}
	rpSrv := httptest.NewServer(rp)
	defer rpSrv.Close()

	l7Addr := startL7(b, backendAddr)

	for _, v := range []struct{ name, addr string }{
		{"direct", backend.Listener.Addr().String()},
		{"reverseproxy", rpSrv.Listener.Addr().String()},
		{"l7", l7Addr},
	} {
		b.Run(fmt.Sprintf("%s/GET-1KiB-c%d", v.name, clients), func(b *testing.B) {
			run(b, "http://"+v.addr+"/public/index.html", len(body))
		})
	}
}

func startL7(b *testing.B, dst netip.AddrPort) string {
	m, err := policy.CompileHTTP([]policy.HTTPRule{{Method: "GET", Path: "/public/.*"}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := httpproxy.DefaultConfig()
	cfg.Matcher, cfg.Flows = m, flow.NewRing(flow.DefaultRingSize)
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return dst, nil }
	p, err := httpproxy.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l) }()
	b.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// run sends b.N requests to url from clients goroutines and reports
// requests per second and latency percentiles.
func run(b *testing.B, url string, size int) {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	get := func() (time.Duration, error) {
		start := time.Now()
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != 200 || int(n) != size) {
			err = fmt.Errorf("got %d with %d bytes", resp.StatusCode, n)
		}
		return time.Since(start), err
	}
	for range clients { // open the connections before measuring
		if _, err := get(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, b.N)
	var (
		wg       sync.WaitGroup
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
