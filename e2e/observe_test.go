package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/internal/testgate"
	"github.com/weftnet/weft/testenv"
)

// nginxHTTPOnly lets pods labelled app=client of namespace dev reach
// app=nginx on TCP 80 only (TestObserve, TestServiceMap).
const nginxHTTPOnly = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: nginx-http-only
  namespace: dev
spec:
  endpointSelector:
    matchLabels:
      app: nginx
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: client
    toPorts:
    - ports:
      - port: "80"
        protocol: TCP
`

// metricsPort is where the agents of this test serve /metrics, on each
// node's own loopback.
const metricsPort = 9962

// TestObserve: a connection a policy denies shows up in `weft observe
// --verdict DROPPED` with both pods, the reason and the observation point;
// a connection to a ClusterIP shows the service and the backend reached;
// weft status carries the flow ring; an agent's /metrics passes promtool
// and its policy-denied counter rises by exactly the packets sent to a
// denied port.
func TestObserve(t *testing.T) {
	spec := testenv.DefaultSpec()
	spec.Nodes = 2
	spec.AgentArgs = []string{"--metrics-address", "127.0.0.1:" + strconv.Itoa(metricsPort)}
	e := up(t, "obs", spec)
	n1, n2 := e.Nodes[0].Name, e.Nodes[1].Name
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := e.AddPod(ctx, testenv.PodSpec{Name: "client-1", Node: n1, Namespace: "dev", Labels: map[string]string{"app": "client"}})
	if err != nil {
		t.Fatal(err)
	}
	server, err := e.AddPod(ctx, testenv.PodSpec{Name: "nginx-dev", Node: n2, Namespace: "dev", Labels: map[string]string{"app": "nginx"}})
	if err != nil {
		t.Fatal(err)
	}
	tg, err := e.Target("pod/nginx-dev")
	if err != nil {
		t.Fatal(err)
	}
	listenIn(t, tg.Do, server.Addr())
	allowed, denied := netip.AddrPortFrom(server.Addr(), portHTTP), netip.AddrPortFrom(server.Addr(), portAlt)
	eventually(t, 30*time.Second, "client reaches nginx before the policy", func() error { return greet(e, client.Name, allowed) })

	weftCLI(t, e, n1, nginxHTTPOnly, "policy", "import", "-f", "-")
	eventually(t, 30*time.Second, "port 8080 of nginx is denied", func() error {
		if err := greet(e, client.Name, denied); err == nil {
			return fmt.Errorf("client still reaches %s", denied)
		}
		return nil
	})

	t.Run("denied-connection-in-observe", func(t *testing.T) {
		eventually(t, 30*time.Second, "the drop in weft observe", func() error {
			out := weftCLI(t, e, n2, "", "observe", "--verdict", "DROPPED", "--to-pod", "dev/nginx-dev", "--port", "8080", "--last", "5")
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "dev/client-1:") && strings.Contains(line, "-> dev/nginx-dev:8080 ") &&
					strings.Contains(line, " to-endpoint DROPPED policy denied (TCP Flags: SYN)") {
					t.Logf("weft observe: %s", line)
					return nil
				}
			}
			all := weftCLI(t, e, n2, "", "observe", "--last", "20")
			return fmt.Errorf("no drop of dev/client-1 -> dev/nginx-dev:8080 at to-endpoint for policy denied in:\n%s\n(the node's last flows:\n%s)", out, all)
		})
		// The same flow as JSON carries both pods and the reason.
		out := weftCLI(t, e, n2, "", "observe", "--verdict", "DROPPED", "--port", "8080", "--last", "1", "-o", "json")
		for _, want := range []string{`"pod_name":"client-1"`, `"pod_name":"nginx-dev"`, `"drop_reason":"policy denied"`,
			`"observation_point":"to-endpoint"`, `"verdict":"DROPPED"`, `"direction":"INGRESS"`, `"policy":"default deny"`} {
			if !strings.Contains(out, want) {
				t.Errorf("weft observe -o json lacks %s:\n%s", want, out)
			}
		}
		// An allowed connection names the policy that admitted it.
		if err := greet(e, client.Name, allowed); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the allowed connection names its policy", func() error {
			out := weftCLI(t, e, n2, "", "observe", "--verdict", "FORWARDED", "--to-pod", "dev/nginx-dev", "--port", "80", "--last", "1", "-o", "json")
			if !strings.Contains(out, `"policy":"dev/nginx-http-only"`) {
				return fmt.Errorf("no \"policy\":\"dev/nginx-http-only\" in %s", out)
			}
			return nil
		})
	})

	t.Run("service-backend", func(t *testing.T) {
		const clusterIP = "10.96.0.80"
		weftCLI(t, e, n1, "", "service", "create", "dev/nginx", "--port", "80", "--selector", "app=nginx", "--cluster-ip", clusterIP)
		tgt := mustTarget(t, e, "pod/client-1")
		// Each attempt is a new connection (a new flow) through the ClusterIP.
		eventually(t, 30*time.Second, "a connection to the ClusterIP shows the service", func() error {
			cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			out, err := tgt.Output(cctx, "bash", "-c", "exec 3<>/dev/tcp/"+clusterIP+"/80 && head -n1 <&3")
			if err != nil || strings.TrimSpace(string(out)) != "ok" {
				return fmt.Errorf("connect to %s:80: %q %v", clusterIP, out, err)
			}
			// The client's node load-balanced it: the frontend asked for
			// and the backend chosen.
			obs := weftCLI(t, e, n1, "", "observe", "--service", "dev/nginx", "--last", "5")
			want := "-> dev/nginx-dev:80 (service dev/nginx " + clusterIP + ":80) to-overlay FORWARDED"
			for _, line := range strings.Split(obs, "\n") {
				if strings.Contains(line, want) {
					t.Logf("weft observe: %s", line)
					return nil
				}
			}
			return fmt.Errorf("no %q in\n%s", want, obs)
		})
		// A connection straight to the backend is no service connection.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		since := time.Now().Format(time.RFC3339Nano)
		if out, err := tgt.Output(cctx, "bash", "-c", "exec 3<>/dev/tcp/"+server.Addr().String()+"/80 && head -n1 <&3"); err != nil {
			t.Fatalf("connect to nginx-dev:80 directly: %q %v", out, err)
		}
		eventually(t, 30*time.Second, "the direct connection in weft observe, without a service", func() error {
			obs := weftCLI(t, e, n1, "", "observe", "--since", since, "--to-pod", "dev/nginx-dev", "--port", "80")
			for _, line := range strings.Split(obs, "\n") {
				if strings.Contains(line, " to-overlay FORWARDED") {
					if strings.Contains(line, "(service ") {
						t.Errorf("a direct connection to the backend is shown as load-balanced: %s", line)
					}
					return nil
				}
			}
			return fmt.Errorf("no to-overlay flow of the direct connection in\n%s", obs)
		})
	})

	t.Run("status", func(t *testing.T) {
		out := weftCLI(t, e, n2, "", "status", "-o", "json")
		if !strings.Contains(out, `"max_flows": "4095"`) || !strings.Contains(out, `"enabled": true`) {
			t.Errorf("weft status -o json lacks the flow ring (enabled, 4095 flows at most):\n%s", out)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		text := scrapeMetrics(t, e, n2)
		if problems := promtoolCheck(t, text); problems != "" {
			t.Errorf("promtool check metrics on %s's /metrics:\n%s", n2, problems)
		}
		for _, want := range []string{`weft_kvstore_operation_duration_seconds_count{operation="update_if_different",outcome="ok"}`,
			`weft_flows_processed_total{observation_point="to-endpoint",verdict="dropped"}`, `weft_endpoints 1`} {
			if !strings.Contains(text, want) {
				t.Errorf("%s's /metrics lacks %s", n2, want)
			}
		}
		// The policy imported above was recomputed into every endpoint.
		if n := metricValue(t, text, "weft_policy_recompute_duration_seconds_count"); n < 1 {
			t.Errorf("%s's weft_policy_recompute_duration_seconds_count = %v after a policy import, want at least 1", n2, n)
		}
		before := deniedCounter(t, text)
		const sent = 5
		err := mustTarget(t, e, "pod/client-1").Do(func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(server.Addr(), 9999).String())
			if err != nil {
				return err
			}
			defer c.Close()
			for range sent {
				if _, err := c.Write([]byte("weft")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("send datagrams from the client: %v", err)
		}
		var rose float64
		eventually(t, 30*time.Second, "the policy-denied counter rises", func() error {
			if rose = deniedCounter(t, scrapeMetrics(t, e, n2)) - before; rose < sent {
				return fmt.Errorf("rose by %v so far", rose)
			}
			return nil
		})
		if rose != sent {
			t.Errorf("weft_datapath_packets_total{reason=\"policy_denied\"} rose by %v after %d datagrams to a denied port, want exactly %d", rose, sent, sent)
		}
	})
}

func mustTarget(t testing.TB, e *testenv.Env, name string) testenv.Target {
	t.Helper()
	tg, err := e.Target(name)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// metricValue is the value of the series named exactly series (name and
// labels as exposed) in a /metrics text; it fails t when there is none.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no %s in /metrics", series)
	return 0
}

// scrapeMetrics GETs /metrics from node's agent, connecting inside the
// node's namespace (the agent listens on the node's loopback).
func scrapeMetrics(t *testing.T, e *testenv.Env, node string) string {
	t.Helper()
	var c net.Conn
	err := mustTarget(t, e, "node/"+node).Do(func() (err error) {
		c, err = net.DialTimeout("tcp4", "127.0.0.1:"+strconv.Itoa(metricsPort), 5*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s's metrics: %v", node, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read %s's metrics: %v", node, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("read %s's metrics: %s %v", node, resp.Status, err)
	}
	return string(body)
}

func deniedCounter(t *testing.T, text string) float64 {
	t.Helper()
	// Drops at the server's ingress (to-endpoint).
	return metricValue(t, text, `weft_datapath_packets_total{direction="ingress",reason="policy_denied",verdict="dropped"}`)
}

func promtoolCheck(t *testing.T, text string) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		testgate.Skip(t, "promtool not installed (Debian package prometheus, installed by make deps)")
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, _ := cmd.CombinedOutput() // findings are the output; exit 1 with them
	return strings.TrimSpace(string(out))
}
