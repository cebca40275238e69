package cli

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/flow"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files of testdata/observe")

// observedFlows are the flows the observer of the tests holds, one of each
// kind the output formats render differently.
func observedFlows() []*agentapi.Flow {
	at := func(ms int) int64 { return testNow.Add(-60e9).UnixNano() + int64(ms)*1e6 }
	client := func(port uint32) *agentapi.FlowEndpoint {
		return &agentapi.FlowEndpoint{Ip: "10.1.0.5", Port: port, Identity: 300, Namespace: "dev", PodName: "client-1",
			Labels: []string{"k8s:app=client", "k8s:io.kubernetes.pod.namespace=dev"}, Node: "c1-n1", Cluster: "c1"}
	}
	nginx := &agentapi.FlowEndpoint{Ip: "10.1.1.7", Port: 80, Identity: 301, Namespace: "dev", PodName: "nginx-dev",
		Labels: []string{"k8s:app=nginx", "k8s:io.kubernetes.pod.namespace=dev"}, Node: "c1-n2", Cluster: "c1"}
	return []*agentapi.Flow{
		{TimeNs: at(200), Source: client(44805), Destination: nginx, Node: "c1-n2", Cluster: "c1", ObservationPoint: "to-endpoint",
			Verdict: agentapi.Verdict_FORWARDED, TcpFlags: flow.TCPSyn, Protocol: "TCP", ProtocolNumber: 6, Direction: agentapi.Direction_INGRESS},
		{TimeNs: at(350), Source: client(44806), Destination: &agentapi.FlowEndpoint{Ip: "10.1.1.7", Port: 8080, Identity: 301,
			Namespace: "dev", PodName: "nginx-dev"}, Node: "c1-n2", Cluster: "c1", ObservationPoint: "to-endpoint",
			Verdict: agentapi.Verdict_DROPPED, DropReasonCode: 1, DropReason: "policy denied", Protocol: "TCP", ProtocolNumber: 6,
			TcpFlags: flow.TCPSyn, Direction: agentapi.Direction_INGRESS},
		{TimeNs: at(1020), Source: client(53001), Destination: &agentapi.FlowEndpoint{Ip: "10.1.2.9", Port: 8080, Identity: 302,
			Namespace: "dev", PodName: "web-1"}, DestinationService: &agentapi.FlowService{Namespace: "dev", Name: "web", Frontend: "10.96.0.10:80"},
			Node: "c1-n1", Cluster: "c1", ObservationPoint: "to-overlay", Verdict: agentapi.Verdict_FORWARDED, Protocol: "TCP",
			ProtocolNumber: 6, Direction: agentapi.Direction_EGRESS},
		{TimeNs: at(2500), Source: client(40000), Destination: &agentapi.FlowEndpoint{Ip: "192.0.2.1", Port: 53, Identity: 2,
			Labels: []string{"reserved:world"}}, Node: "c1-n1", Cluster: "c1", ObservationPoint: "to-stack",
			Verdict: agentapi.Verdict_FORWARDED, Protocol: "UDP", ProtocolNumber: 17, Direction: agentapi.Direction_EGRESS},
	}
}

// observedL7Flows are the L7 proxy's records of a denied request and of
// its 403 answer.
func observedL7Flows() []*agentapi.Flow {
	at := func(ms int) int64 { return testNow.Add(-60e9).UnixNano() + int64(ms)*1e6 }
	client := &agentapi.FlowEndpoint{Ip: "10.1.0.5", Port: 44900, Identity: 300, Namespace: "dev", PodName: "client-1"}
	nginx := &agentapi.FlowEndpoint{Ip: "10.1.1.7", Port: 80, Identity: 301, Namespace: "dev", PodName: "nginx-dev"}
	return []*agentapi.Flow{
		{TimeNs: at(3000), Source: client, Destination: nginx, Node: "c1-n2", Cluster: "c1", ObservationPoint: flow.PointL7Proxy,
			Verdict: agentapi.Verdict_DROPPED, DropReason: "policy denied", Protocol: "TCP", ProtocolNumber: 6, Direction: agentapi.Direction_INGRESS,
			L7: &agentapi.FlowL7{Type: agentapi.L7FlowType_REQUEST, Http: &agentapi.FlowHTTP{Method: "PUT", Url: "http://nginx-dev/v1/exhaust-port", Protocol: "HTTP/1.1"}}},
		{TimeNs: at(3001), Source: nginx, Destination: client, Node: "c1-n2", Cluster: "c1", ObservationPoint: flow.PointL7Proxy,
			Verdict: agentapi.Verdict_FORWARDED, Protocol: "TCP", ProtocolNumber: 6, Direction: agentapi.Direction_INGRESS,
			L7: &agentapi.FlowL7{Type: agentapi.L7FlowType_RESPONSE, LatencyNs: 12e6, Http: &agentapi.FlowHTTP{Code: 403, Method: "PUT", Url: "http://nginx-dev/v1/exhaust-port", Protocol: "HTTP/1.1"}}},
	}
}

// serveObserver serves a real flow.Observer holding flows on a unix socket.
func serveObserver(t *testing.T, flows []*agentapi.Flow) string {
	t.Helper()
	socket := filepath.Join(shortTempDir(t), "agent.sock")
	ring := flow.NewRing(64)
	for _, f := range flows {
		ring.Write(f)
	}
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	agentapi.RegisterObserverServer(s, flow.NewObserver(ring, "c1-n1"))
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return socket
}

func TestObserveGolden(t *testing.T) {
	socket := serveObserver(t, append(observedFlows(), observedL7Flows()...))
	for _, tc := range []struct{ name, args string }{
		{"compact", "-o compact"},
		{"compact-color", "-o compact --color always --print-node-name"},
		{"dict", "-o dict"},
		{"json", "-o json"},
		{"jsonpb", "-o jsonpb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runCLI(t, t.TempDir(), nil, append([]string{"--socket", socket, "observe"}, strings.Fields(tc.args)...)...)
			if res.err != nil {
				t.Fatalf("weft observe %s: %v\n%s", tc.args, res.err, res.stderr)
			}
			golden := filepath.Join("testdata", "observe", tc.name+".golden")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(res.stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if res.stdout != string(want) {
				t.Errorf("weft observe %s printed\n%s\nwant (%s)\n%s", tc.args, res.stdout, golden, want)
			}
		})
	}
}

func TestObserveFilters(t *testing.T) {
	socket := serveObserver(t, observedFlows())
	for _, tc := range []struct {
		args string
		want []string // destinations printed, in order
	}{
		{"--verdict DROPPED", []string{"dev/nginx-dev:8080"}},
		{"--not --verdict DROPPED --to-pod dev/nginx", []string{"dev/nginx-dev:80"}},
		{"--port 53 --port 8080", []string{"dev/nginx-dev:8080", "dev/web-1:8080", "192.0.2.1:53 (world)"}},
		{"--not --port 53 --not --verdict FORWARDED", []string{"dev/nginx-dev:8080"}},
		{"--service dev/web", []string{"dev/web-1:8080"}},
		{"--last 1", []string{"192.0.2.1:53 (world)"}},
		{"--from-label k8s:app=client --protocol udp", []string{"192.0.2.1:53 (world)"}},
		{"--node-name c1-n1 --ip 10.1.2.0/24", []string{"dev/web-1:8080"}},
		{"--since 59s", []string{"dev/web-1:8080", "192.0.2.1:53 (world)"}},
		{"--until 59s", []string{"dev/nginx-dev:80", "dev/nginx-dev:8080"}},
	} {
		t.Run(tc.args, func(t *testing.T) {
			res := runCLI(t, t.TempDir(), nil, append([]string{"--socket", socket, "observe"}, strings.Fields(tc.args)...)...)
			if res.err != nil {
				t.Fatalf("weft observe %s: %v", tc.args, res.err)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
				if _, rest, ok := strings.Cut(line, " -> "); ok {
					dst, _, _ := strings.Cut(rest, " to-")
					dst, _, _ = strings.Cut(dst, " (service")
					got = append(got, dst)
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("weft observe %s printed flows to %q, want %q\n%s", tc.args, got, tc.want, res.stdout)
			}
		})
	}
}

func TestObserveRefusesBadValues(t *testing.T) {
	socket := serveObserver(t, nil)
	for _, tc := range []struct{ args, want string }{
		{"--verdict MAYBE", `--verdict "MAYBE": accepted: FORWARDED, DROPPED, REDIRECTED`},
		{"--port 70000", `--port "70000": accepted: a port number 1 to 65535`},
		{"--since yesterday-ish", `--since: time "yesterday-ish": accepted: a duration before now`},
		{"--since 1m --until 5m", `--since 1m is after --until 5m`},
		{"--namespace dev --not", `--not must come before a filter flag`},
		{"-o table", `-o "table": accepted: compact, dict, json, jsonpb`},
		{"--all --last 3", `--all and --last contradict each other`},
		{"--relay 127.0.0.1:1", `--relay needs --tls-ca, --tls-cert and --tls-key`},
	} {
		t.Run(tc.args, func(t *testing.T) {
			res := runCLI(t, t.TempDir(), nil, append([]string{"--socket", socket, "observe"}, strings.Fields(tc.args)...)...)
			if res.err == nil || !strings.Contains(res.err.Error(), tc.want) {
				t.Fatalf("weft observe %s: err = %v, want one containing %q", tc.args, res.err, tc.want)
			}
		})
	}
}
