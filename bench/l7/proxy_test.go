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
	"strings"
	"testing"

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
			tr := &http.Transport{MaxIdleConnsPerHost: clients, DisableCompression: true}
			defer tr.CloseIdleConnections()
			Load(b, &http.Client{Transport: tr}, "http://"+v.addr+"/public/index.html", len(body), clients)
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
