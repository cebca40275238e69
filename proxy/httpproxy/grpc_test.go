package httpproxy

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/policy"
)

// TestGRPC: a real gRPC client and server (the standard health service)
// through the proxy, with an HTTP rule allowing only the Check method's
// path: Check answers SERVING, the Watch stream is refused with
// PermissionDenied (the proxy's 403), as with Cilium's gRPC path rules.
func TestGRPC(t *testing.T) {
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("deathstar", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(gl)
	defer srv.Stop()

	m, err := policy.CompileHTTP([]policy.HTTPRule{{Method: "POST", Path: `/grpc\.health\.v1\.Health/Check`}})
	if err != nil {
		t.Fatal(err)
	}
	ring := flow.NewRing(64)
	cfg := DefaultConfig()
	cfg.Matcher, cfg.Flows = m, ring
	dst := netip.MustParseAddrPort(gl.Addr().String())
	cfg.Destination = func(net.Conn) (netip.AddrPort, error) { return dst, nil }
	addr := serve(t, cfg)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: "deathstar"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check through the proxy: %v %v, want SERVING", resp, err)
	}
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "deathstar"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.PermissionDenied {
		t.Errorf("Watch through the proxy: %v, want PermissionDenied", err)
	}
	var got []string
	for seq := ring.Oldest(); seq < ring.Next(); seq++ {
		f, _, _, _ := ring.Read(seq)
		got = append(got, flow.L7Type(f)+" "+f.GetVerdict().String()+" "+f.GetL7().GetHttp().GetUrl())
	}
	want := []string{
		"http-request FORWARDED http://" + addr + "/grpc.health.v1.Health/Check",
		"http-response FORWARDED http://" + addr + "/grpc.health.v1.Health/Check",
		"http-request DROPPED http://" + addr + "/grpc.health.v1.Health/Watch",
		"http-response FORWARDED http://" + addr + "/grpc.health.v1.Health/Watch",
	}
	if len(got) != len(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: %q, want %q", i, got[i], want[i])
		}
	}
}
