package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/policy"
)

// TestUpstreamConnections: requests without a body on one client
// connection share one upstream connection; a destination that closes
// it (Connection: close, or while idle) gets a new one, a GET is sent
// on a new connection when the kept one was closed while idle, and so is
// a POST (the closed connection is noticed before anything is sent).
func TestUpstreamConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	var seen []string // "conn#: METHOD path"
	go func() {
		for i := 0; ; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						c.Close()
						return
					}
					mu.Lock()
					seen = append(seen, fmt.Sprintf("%d: %s %s", i, req.Method, req.URL.Path))
					mu.Unlock()
					closing := req.URL.Path == "/close"
					hdr := ""
					if closing {
						hdr = "Connection: close\r\n"
					}
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\n%sContent-Length: 2\r\n\r\nok", hdr)
					if closing {
						c.Close()
						return
					}
				}
			}()
		}
	}()
	all, err := policy.CompileHTTP([]policy.HTTPRule{{}})
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.MustParseAddrPort(ln.Addr().String())
	cfg := DefaultConfig()
	cfg.Matcher = all
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return dst, nil }
	addr := serve(t, cfg)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer c.CloseIdleConnections()
	do := func(method, path string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		io.Copy(io.Discard, resp.Body) // read whole: the client keeps its connection
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/a", "/b", "/close", "/c"} {
		if code := do("GET", p); code != 200 {
			t.Fatalf("GET %s: %d", p, code)
		}
	}
	// The destination closes the kept connection while idle.
	mu.Lock()
	conns[len(conns)-1].Close()
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if code := do("GET", "/d"); code != 200 {
		t.Errorf("GET after the destination closed the idle connection: %d, want 200 (sent again)", code)
	}
	mu.Lock()
	conns[len(conns)-1].Close()
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	if code := do("POST", "/e"); code != 200 {
		t.Errorf("POST after the destination closed the idle connection: %d, want 200 on a new connection", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := strings.Join(seen, ", "), "0: GET /a, 0: GET /b, 0: GET /close, 1: GET /c, 2: GET /d, 3: POST /e"; got != want {
		t.Errorf("the destination saw %s, want %s", got, want)
	}
}
