package httpproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/internal/namedns"
	"github.com/weftnet/weft/internal/testgate"
)

// TestTransparentRedirection proves the redirection the datapath is to
// use, in throwaway namespaces: a client namespace and a pod namespace
// wired to a node namespace, where a policy-routing rule delivers the
// client's TCP port-80 traffic locally (the datapath will select it with
// an skb mark instead of the rule's port match) to a transparent listener
// bound to the pod's address. The proxy sees the pod's address as the
// original destination: the landing reaches the pod (from the node), the
// exhaust port gets 403 Access denied and never reaches it.
func TestTransparentRedirection(t *testing.T) {
	testgate.Root(t)
	b := make([]byte, 2)
	rand.Read(b)
	sfx := hex.EncodeToString(b)
	node, client, pod := "l7n-"+sfx, "l7c-"+sfx, "l7p-"+sfx
	for _, ns := range []string{node, client, pod} {
		if err := namedns.Create(ns); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := namedns.Delete(ns); err != nil {
				t.Error(err)
			}
		})
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ip("-n", node, "link", "add", "vc", "type", "veth", "peer", "name", "eth0", "netns", client)
	ip("-n", node, "link", "add", "vp", "type", "veth", "peer", "name", "eth0", "netns", pod)
	for _, a := range [][3]string{{node, "vc", "10.77.1.1/24"}, {node, "vp", "10.77.0.1/24"}, {client, "eth0", "10.77.1.2/24"}, {pod, "eth0", "10.77.0.2/24"}} {
		ip("-n", a[0], "addr", "add", a[2], "dev", a[1])
		ip("-n", a[0], "link", "set", a[1], "up")
	}
	ip("-n", client, "route", "add", "default", "via", "10.77.1.1")
	ip("-n", pod, "route", "add", "default", "via", "10.77.0.1")
	ip("-n", node, "rule", "add", "iif", "vc", "ipproto", "tcp", "dport", "80", "lookup", "2004")
	ip("-n", node, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "2004")

	var (
		mu   sync.Mutex
		seen []string
	)
	podSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.RequestURI+" from "+host)
		mu.Unlock()
		io.WriteString(w, "Ship landed\n")
	})}
	var podL net.Listener
	if err := namedns.Do(pod, func() (err error) { podL, err = net.Listen("tcp", "10.77.0.2:80"); return err }); err != nil {
		t.Fatal(err)
	}
	go podSrv.Serve(podL)
	defer podSrv.Close()

	ring := flow.NewRing(16)
	cfg := DefaultConfig()
	cfg.Matcher, cfg.Flows = matcherOf(t, "deathstar-l7.yaml"), ring
	cfg.Dial = dialIn(node) // the agent runs in the node's namespace
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var l net.Listener
	if err := namedns.Do(node, func() (err error) {
		l, err = ListenTransparent(ctx, netip.MustParseAddrPort("10.77.0.2:80"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	c := &http.Client{Transport: &http.Transport{DialContext: dialIn(client)}}
	defer c.CloseIdleConnections()
	for _, tc := range []struct {
		method, path string
		code         int
		body         string
	}{
		{"POST", "/v1/request-landing", 200, "Ship landed\n"},
		{"PUT", "/v1/exhaust-port", 403, "Access denied"},
	} {
		req, _ := http.NewRequest(tc.method, "http://10.77.0.2"+tc.path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s from the client namespace: %v", tc.method, tc.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || string(body) != tc.body {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.code, tc.body)
		}
	}
	mu.Lock()
	got := fmt.Sprint(seen)
	mu.Unlock()
	if want := "[POST /v1/request-landing from 10.77.0.1]"; got != want {
		t.Errorf("the pod saw %s, want %s (the landing only, from the node's proxy)", got, want)
	}
	f, _, _, _ := ring.Read(ring.Oldest())
	if f.GetSource().GetIp() != "10.77.1.2" || f.GetDestination().GetIp() != "10.77.0.2" || f.GetDestination().GetPort() != 80 {
		t.Errorf("first record %v: want the client 10.77.1.2 to the original destination 10.77.0.2:80", f)
	}
}

// dialIn dials from inside the named namespace.
func dialIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		err = namedns.Do(ns, func() error {
			var d net.Dialer
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}
