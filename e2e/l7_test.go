package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/testenv"
)

// deathstar is an HTTP server in a pod, on port 80, answering as the one
// of Cilium's getting-started guide; it records every request it sees.
type deathstar struct {
	mu   sync.Mutex
	seen []string // "METHOD path"
}

func (d *deathstar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	d.seen = append(d.seen, r.Method+" "+r.URL.RequestURI())
	d.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/request-landing":
		fmt.Fprint(w, "Ship landed\n")
	case r.Method == http.MethodPut && r.URL.Path == "/v1/exhaust-port":
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "Panic: deathstar exploded\n")
	default:
		http.NotFound(w, r)
	}
}

func (d *deathstar) saw(req string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.seen {
		if s == req {
			n++
		}
	}
	return n
}

// serveIn serves h on addr inside target until the test ends.
func serveIn(t testing.TB, e *testenv.Env, target string, addr netip.AddrPort, h http.Handler) {
	t.Helper()
	var ln net.Listener
	if err := mustTarget(t, e, target).Do(func() (err error) {
		ln, err = net.Listen("tcp4", addr.String())
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, target, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
}

// podClient is an HTTP client whose connections start in target (a new
// connection per request unless keepAlive).
func podClient(t testing.TB, e *testenv.Env, target string, keepAlive bool) *http.Client {
	tg := mustTarget(t, e, target)
	tr := &http.Transport{
		DisableKeepAlives: !keepAlive,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := tg.Do(func() (err error) {
				d := net.Dialer{Timeout: 2 * time.Second}
				c, err = d.DialContext(ctx, network, addr)
				return err
			})
			return c, err
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// call sends one request and returns the status code and body.
func call(c *http.Client, method, url string) (int, string, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// TestL7Deathstar: Cilium's L7 getting-started example on two nodes. The
// deathstar (n1) serves HTTP on port 80 and Cilium's rule, imported
// verbatim, lets org=empire only POST /v1/request-landing. A tiefighter on
// the other node (over the overlay) and one on the deathstar's node land;
// PUT /v1/exhaust-port gets 403 "Access denied" from the node's L7 proxy
// and never reaches the deathstar, also on a kept-alive connection that
// landed first; an xwing is not even connected (L3/L4 denied). Both
// requests show up as http-request flows in weft observe and count in the
// proxy's metrics. Then the agent of n1 (which runs the proxy) is killed
// and restarted under load: no request is answered by anything but the
// deathstar, a 403 or a 503, no PUT reaches the deathstar, landings
// succeed again afterwards, and the flows redirected while the proxy was
// down were dropped with "proxy unavailable". Last, the L7 rule is
// replaced by the L3/L4 one: a connection kept at the proxy gets its PUT
// through.
func TestL7Deathstar(t *testing.T) {
	spec := testenv.DefaultSpec()
	spec.AgentArgs = []string{"--metrics-address", "127.0.0.1:" + strconv.Itoa(metricsPort)}
	e := up(t, "l7", spec)
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pods := map[string]testenv.Pod{}
	for _, d := range []podDef{
		{"deathstar", n1, "default", map[string]string{"org": "empire", "class": "deathstar"}},
		{"tiefighter", n2, "default", map[string]string{"org": "empire", "class": "tiefighter"}},
		{"tiefighter-near", n1, "default", map[string]string{"org": "empire", "class": "tiefighter"}},
		{"xwing", n2, "default", map[string]string{"org": "alliance", "class": "xwing"}},
	} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod %s: %v", d.name, err)
		}
		pods[d.name] = p
	}
	ds := &deathstar{}
	serveIn(t, e, "pod/deathstar", netip.AddrPortFrom(pods["deathstar"].Addr(), 80), ds)
	base := "http://" + pods["deathstar"].IP
	landing, exhaust := base+"/v1/request-landing", base+"/v1/exhaust-port"
	fighter := podClient(t, e, "pod/tiefighter", false)
	if code, body, err := call(fighter, "POST", landing); err != nil || code != 200 || body != "Ship landed\n" {
		t.Fatalf("before any policy, the landing: %d %q %v", code, body, err)
	}

	doc, err := os.ReadFile("../policy/testdata/deathstar-l7.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out := weftCLI(t, e, n1, string(doc), "policy", "import", "-f", "-")
	if !strings.Contains(out, "rule1") {
		t.Fatalf("weft policy import: %s", out)
	}
	// Once the policy is in force, the exhaust port is refused by the proxy.
	eventually(t, 30*time.Second, "PUT /v1/exhaust-port from the tiefighter gets 403 Access denied", func() error {
		code, body, err := call(fighter, "PUT", exhaust)
		if err != nil || code != http.StatusForbidden || strings.TrimSpace(body) != "Access denied" {
			return fmt.Errorf("got %d %q %v", code, body, err)
		}
		return nil
	})
	if n := ds.saw("PUT /v1/exhaust-port"); n != 0 {
		t.Fatalf("the deathstar saw %d PUT /v1/exhaust-port", n)
	}

	for _, from := range []string{"tiefighter", "tiefighter-near"} {
		c := podClient(t, e, "pod/"+from, true)
		before := ds.saw("POST /v1/request-landing")
		if code, body, err := call(c, "POST", landing); err != nil || code != 200 || body != "Ship landed\n" {
			t.Errorf("%s: POST /v1/request-landing: %d %q %v, want 200 from the deathstar", from, code, body, err)
		}
		// The same (kept-alive) connection: decided per request.
		if code, body, err := call(c, "PUT", exhaust); err != nil || code != http.StatusForbidden || strings.TrimSpace(body) != "Access denied" {
			t.Errorf("%s: PUT /v1/exhaust-port: %d %q %v, want 403 Access denied", from, code, body, err)
		}
		if code, _, err := call(c, "GET", base+"/v1/"); err != nil || code != http.StatusForbidden {
			t.Errorf("%s: GET /v1/: %d %v, want 403", from, code, err)
		}
		if after := ds.saw("POST /v1/request-landing"); after != before+1 {
			t.Errorf("%s: the deathstar saw %d landings, want %d", from, after, before+1)
		}
	}
	if n := ds.saw("PUT /v1/exhaust-port") + ds.saw("GET /v1/"); n != 0 {
		t.Fatalf("denied requests reached the deathstar: %v", ds.seen)
	}
	if _, _, err := call(podClient(t, e, "pod/xwing", false), "POST", landing); err == nil {
		t.Error("the xwing got an answer; org=alliance is not admitted at L3/L4")
	}

	t.Run("flows-and-metrics", func(t *testing.T) {
		eventually(t, 20*time.Second, "the L7 records in weft observe", func() error {
			obs := weftCLI(t, e, n1, "", "observe", "--last", "100")
			for _, want := range []*regexp.Regexp{
				regexp.MustCompile(`default/tiefighter:\d+ -> default/deathstar:80 http-request FORWARDED \(HTTP/1.1 POST http://` + regexp.QuoteMeta(pods["deathstar"].IP) + `/v1/request-landing\)`),
				regexp.MustCompile(`default/tiefighter:\d+ -> default/deathstar:80 http-request DROPPED policy denied \(HTTP/1.1 PUT http://[^ ]+/v1/exhaust-port\)`),
				regexp.MustCompile(`default/deathstar:80 -> default/tiefighter:\d+ http-response FORWARDED \(HTTP/1.1 403 `),
				regexp.MustCompile(`default/tiefighter:\d+ -> default/deathstar:80 to-proxy REDIRECTED`),
			} {
				if !want.MatchString(obs) {
					return fmt.Errorf("no line matches %s in:\n%s", want, obs)
				}
			}
			return nil
		})
		m := scrapeMetrics(t, e, n1)
		if v := metricValue(t, m, `weft_proxy_http_requests_total{code="403",method="PUT",verdict="denied"}`); v < 3 {
			t.Errorf("denied PUTs counted %v, want at least 3", v)
		}
		if v := metricValue(t, m, `weft_proxy_http_requests_total{code="200",method="POST",verdict="forwarded"}`); v < 2 {
			t.Errorf("forwarded POSTs counted %v, want at least 2", v)
		}
	})

	t.Run("proxy-restart-under-load", func(t *testing.T) {
		var (
			mu                 sync.Mutex
			landed, refused    int
			unavailable, fails int
			wrong              []string
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for _, from := range []string{"tiefighter", "tiefighter-near"} {
			c := podClient(t, e, "pod/"+from, false)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					method, url := "POST", landing
					if i%2 == 1 {
						method, url = "PUT", exhaust
					}
					code, body, err := call(c, method, url)
					mu.Lock()
					switch {
					case err != nil:
						fails++ // no answer: reset or refused while the proxy is down
					case code == http.StatusServiceUnavailable && strings.HasPrefix(body, "Service Unavailable"):
						unavailable++
					case method == "POST" && code == 200 && body == "Ship landed\n":
						landed++
					case method == "PUT" && code == http.StatusForbidden && strings.TrimSpace(body) == "Access denied":
						refused++
					default:
						wrong = append(wrong, fmt.Sprintf("%s %s from %s: %d %q", method, url, from, code, body))
					}
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		time.Sleep(time.Second)
		if err := e.StopAgent(ctx, n1, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // requests meanwhile find no proxy
		if err := e.StartAgent(ctx, n1); err != nil {
			t.Fatal(err)
		}
		if err := e.WaitAgent(ctx, n1, time.Minute); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		landedBefore := landed
		mu.Unlock()
		eventually(t, 30*time.Second, "landings succeed again after the restart", func() error {
			mu.Lock()
			defer mu.Unlock()
			if landed < landedBefore+5 {
				return fmt.Errorf("%d landings since the restart", landed-landedBefore)
			}
			return nil
		})
		close(stop)
		wg.Wait()
		t.Logf("under restart: %d landed, %d refused (403), %d 503, %d without an answer", landed, refused, unavailable, fails)
		if len(wrong) > 0 {
			t.Errorf("answers other than the deathstar's landing, 403 or 503: %q", wrong)
		}
		if n := ds.saw("PUT /v1/exhaust-port"); n != 0 {
			t.Errorf("%d PUT /v1/exhaust-port reached the deathstar", n)
		}
		if refused == 0 {
			t.Error("no PUT was refused during the run")
		}
		m := scrapeMetrics(t, e, n1)
		if v := metricValue(t, m, `weft_datapath_packets_total{direction="ingress",reason="proxy_unavailable",verdict="dropped"}`); v < 1 {
			t.Errorf("packets dropped with proxy unavailable: %v, want some (the proxy was down under load)", v)
		}
	})

	// The L7 rule replaced by Cilium's L3/L4 one: a connection the datapath
	// handed to the proxy stays there, and its requests now pass as the
	// L3/L4 policy allows them, where they got 403 until it reconnected.
	t.Run("rules-removed", func(t *testing.T) {
		kept := podClient(t, e, "pod/tiefighter", true)
		eventually(t, 30*time.Second, "a kept-alive connection at the proxy (PUT /v1/exhaust-port gets 403)", func() error {
			if code, _, err := call(kept, "POST", landing); err != nil || code != 200 {
				return fmt.Errorf("landing: %d %v", code, err)
			}
			if code, body, err := call(kept, "PUT", exhaust); err != nil || code != http.StatusForbidden {
				return fmt.Errorf("PUT /v1/exhaust-port: %d %q %v", code, body, err)
			}
			return nil
		})
		l3l4, err := os.ReadFile("../policy/testdata/deathstar.yaml")
		if err != nil {
			t.Fatal(err)
		}
		weftCLI(t, e, n1, string(l3l4), "policy", "import", "-f", "-")
		if out := weftCLI(t, e, n1, "", "policy", "delete", "default/rule1"); !strings.Contains(out, "deleted policy default/rule1") {
			t.Fatalf("weft policy delete: %s", out)
		}
		eventually(t, 30*time.Second, "the kept connection's PUT /v1/exhaust-port reaches the deathstar", func() error {
			if code, body, err := call(kept, "PUT", exhaust); err != nil || code != http.StatusServiceUnavailable || body != "Panic: deathstar exploded\n" {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
		eventually(t, 20*time.Second, "the kept connection's PUT forwarded by the proxy in weft observe", func() error {
			obs := weftCLI(t, e, n1, "", "observe", "--last", "200")
			want := regexp.MustCompile(`default/tiefighter:\d+ -> default/deathstar:80 http-request FORWARDED \(HTTP/1.1 PUT http://[^ ]+/v1/exhaust-port\)`)
			if !want.MatchString(obs) {
				return fmt.Errorf("no line matches %s in:\n%s", want, obs)
			}
			return nil
		})
		if _, _, err := call(podClient(t, e, "pod/xwing", false), "POST", landing); err == nil {
			t.Error("the xwing got an answer; the L3/L4 policy admits org=empire only")
		}
	})
}

// echoSource answers every request with "<path> from <client address>".
type echoSource struct{}

func (echoSource) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	fmt.Fprintf(w, "%s from %s", r.URL.Path, host)
}

// TestL7Egress: egress HTTP rules on a client (Cilium's client-egress-l7
// shape: only GET /public to app=echo on port 80). The client's requests
// to an echo pod on the other node (over the overlay) and to one on its
// own node go through its node's egress proxy: GET /public is answered by
// the echo pod, GET /private gets 403 Access denied and never reaches it.
// The proxy's connection keeps the client's identity: the echo pods admit
// only app=client on port 80 (ingress policy), and they see the client's
// own address as the request's source. In tunnel and native routing.
func TestL7Egress(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		t.Run(routing, func(t *testing.T) {
			spec := testenv.DefaultSpec()
			spec.Routing = routing
			testL7Egress(t, up(t, "l7e", spec))
		})
	}
}

func testL7Egress(t *testing.T, e *testenv.Env) {
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	pods := map[string]testenv.Pod{}
	for _, d := range []podDef{
		{"client", n1, "default", map[string]string{"app": "client"}},
		{"echo-far", n2, "default", map[string]string{"app": "echo"}},
		{"echo-near", n1, "default", map[string]string{"app": "echo"}},
	} {
		p, err := e.AddPod(ctx, testenv.PodSpec{Name: d.name, Node: d.node, Namespace: d.ns, Labels: d.labels})
		if err != nil {
			t.Fatalf("add pod %s: %v", d.name, err)
		}
		pods[d.name] = p
		if d.labels["app"] == "echo" {
			serveIn(t, e, "pod/"+d.name, netip.AddrPortFrom(p.Addr(), 80), echoSource{})
		}
	}
	doc := `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: client-egress-l7
spec:
  endpointSelector:
    matchLabels:
      app: client
  egress:
  - toEndpoints:
    - matchLabels:
        app: echo
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
      rules:
        http:
        - method: GET
          path: /public
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: echo-from-client
spec:
  endpointSelector:
    matchLabels:
      app: echo
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`
	if out := weftCLI(t, e, n1, doc, "policy", "import", "-f", "-"); !strings.Contains(out, "client-egress-l7") {
		t.Fatalf("weft policy import: %s", out)
	}
	// Until the policy is in force, a new connection per try: a kept one
	// opened before it stays on its path (conntrack), as in Cilium.
	fresh := podClient(t, e, "pod/client", false)
	client := podClient(t, e, "pod/client", true)
	for _, echo := range []string{"echo-far", "echo-near"} {
		base := "http://" + pods[echo].IP
		eventually(t, 30*time.Second, "GET /private to "+echo+" gets 403 from the egress proxy", func() error {
			code, body, err := call(fresh, "GET", base+"/private")
			if err != nil || code != http.StatusForbidden || strings.TrimSpace(body) != "Access denied" {
				return fmt.Errorf("got %d %q %v", code, body, err)
			}
			return nil
		})
		want := "/public from " + pods["client"].IP
		if code, body, err := call(client, "GET", base+"/public"); err != nil || code != 200 || body != want {
			t.Errorf("GET /public to %s: %d %q %v, want 200 %q (the client's identity and address kept)", echo, code, body, err, want)
		}
		if code, _, err := call(client, "POST", base+"/public"); err != nil || code != http.StatusForbidden {
			t.Errorf("POST /public to %s: %d %v, want 403", echo, code, err)
		}
	}
	eventually(t, 20*time.Second, "the egress records in weft observe", func() error {
		obs := weftCLI(t, e, n1, "", "observe", "--last", "100")
		for _, want := range []*regexp.Regexp{
			regexp.MustCompile(`default/client:\d+ -> default/echo-far:80 http-request FORWARDED \(HTTP/1.1 GET http://` + regexp.QuoteMeta(pods["echo-far"].IP) + `/public\)`),
			regexp.MustCompile(`default/client:\d+ -> default/echo-near:80 http-request DROPPED policy denied \(HTTP/1.1 GET http://[^ ]+/private\)`),
		} {
			if !want.MatchString(obs) {
				return fmt.Errorf("no line matches %s in:\n%s", want, obs)
			}
		}
		return nil
	})
}
