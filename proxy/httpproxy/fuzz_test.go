package httpproxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
)

// FuzzProxy sends arbitrary bytes to the proxy on a real connection, in
// front of a real destination whose rule allows only GET /allowed...: the
// proxy must never panic (its handler recovers and logs: the log is
// checked), must answer or close, and the destination must never be sent
// a request the rule denies.
func FuzzProxy(f *testing.F) {
	for _, seed := range []string{
		"GET /allowed HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /allowed HTTP/1.1\r\nHost: a\r\n\r\nPOST /denied HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
		"POST /allowed HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
		"GET /allowed HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab\r\n0\r\n\r\n",
		"GET /allowed HTTP/1.0\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET /allowed HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
	} {
		f.Add([]byte(seed))
	}
	var (
		mu     sync.Mutex
		denied []string
	)
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "GET" || !strings.HasPrefix(r.RequestURI, "/allowed") {
			mu.Lock()
			denied = append(denied, r.Method+" "+r.RequestURI)
			mu.Unlock()
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	f.Cleanup(dst.Close)
	m, err := policy.CompileHTTP([]policy.HTTPRule{{Method: "GET", Path: "/allowed.*"}})
	if err != nil {
		f.Fatal(err)
	}
	var logs syncBuffer
	cfg := DefaultConfig()
	cfg.Matcher, cfg.Flows, cfg.MaxHeaderBytes = m, flow.NewRing(64), 4096
	cfg.IdleTimeout, cfg.ReadHeaderTimeout = 5*time.Second, 5*time.Second
	cfg.Log = slog.New(slog.NewTextHandler(&logs, nil))
	dstAddr := netip.MustParseAddrPort(dst.Listener.Addr().String())
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return dstAddr, nil }
	addr := serve(f, cfg)

	f.Fuzz(func(t *testing.T, input []byte) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			c.Write(input)
			c.(*net.TCPConn).CloseWrite()
		}()
		// The proxy answers what it can and closes: reading ends.
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("read the answers: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(denied) > 0 {
			t.Fatalf("the destination was sent %q, which the rule denies", denied)
		}
		if s := logs.String(); strings.Contains(s, "panicked") {
			t.Fatalf("the proxy panicked: %s", s)
		}
	})
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
