package httpproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/flow"
)

// TestH2C: a client speaking HTTP/2 with prior knowledge (as gRPC does
// without TLS) gets the deathstar rule enforced per request on one
// connection: the landing reaches the destination over h2c, streamed
// with its trailers; the exhaust port gets 403 Access denied.
func TestH2C(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	dst := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Proto+" "+r.Method+" "+r.RequestURI)
		mu.Unlock()
		w.Header().Set("Trailer", "Grpc-Status")
		io.WriteString(w, "Ship landed\n")
		w.Header().Set("Grpc-Status", "0")
	}))
	dst.Config.Protocols = h2Protocols()
	dst.Start()
	defer dst.Close()
	addr := netip.MustParseAddrPort(dst.Listener.Addr().String())

	ring := flow.NewRing(64)
	cfg := DefaultConfig()
	cfg.Matcher, cfg.Flows = matcherOf(t, "deathstar-l7.yaml"), ring
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return addr, nil }
	proxyAddr := serve(t, cfg)

	tr := &http.Transport{Protocols: h2Protocols()}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	base := "http://" + proxyAddr

	resp, err := c.Post(base+"/v1/request-landing", "text/plain", strings.NewReader("tie"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || string(body) != "Ship landed\n" || resp.Trailer.Get("Grpc-Status") != "0" {
		t.Errorf("POST /v1/request-landing: %s %d %q trailer %v, want HTTP/2.0 200 \"Ship landed\" with Grpc-Status 0", resp.Proto, resp.StatusCode, body, resp.Trailer)
	}
	req, _ := http.NewRequest("PUT", base+"/v1/exhaust-port", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || string(body) != "Access denied" {
		t.Errorf("PUT /v1/exhaust-port: %d %q, want 403 \"Access denied\"", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, ",") != "HTTP/2.0 POST /v1/request-landing" {
		t.Errorf("the destination saw %q, want only the landing over HTTP/2", seen)
	}
	var got []string
	for seq := ring.Oldest(); seq < ring.Next(); seq++ {
		f, _, _, _ := ring.Read(seq)
		got = append(got, flow.L7Type(f)+" "+f.GetVerdict().String()+" "+f.GetL7().GetHttp().GetProtocol()+" "+f.GetL7().GetHttp().GetMethod())
	}
	want := "http-request FORWARDED HTTP/2.0 POST,http-response FORWARDED HTTP/2.0 POST,http-request DROPPED HTTP/2.0 PUT,http-response FORWARDED HTTP/2.0 PUT"
	if strings.Join(got, ",") != want {
		t.Errorf("records %q, want %q", got, want)
	}
}
