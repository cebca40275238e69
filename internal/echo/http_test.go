package echo

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestServeHTTP: every request, any method and target, is answered 200
// with "<method> <target> at <name>", on one kept-alive connection.
func TestServeHTTP(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := ServeHTTP(ln, "web")
	defer srv.Close()
	c := &http.Client{}
	for _, tc := range []struct{ method, target string }{
		{"GET", "/"}, {"POST", "/public"}, {"PUT", "/v1/exhaust-port?x=1"},
	} {
		t.Run(tc.method+tc.target, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+ln.Addr().String()+tc.target, strings.NewReader("body"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := tc.method + " " + tc.target + " at web\n"; resp.StatusCode != 200 || string(b) != want {
				t.Errorf("got %d %q, want 200 %q", resp.StatusCode, b, want)
			}
		})
	}
	srv.Close()
	if _, err := c.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("answered after Close")
	}
}
