package connectivity

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/namedns"
	"github.com/weftnet/weft/internal/testgate"
)

// TestExistingPodAfterRestart, in a real namespace: a complete test pod
// (as CreateTestPod leaves it) is reused by CreateTestPod, and an agent
// that restarted (a new Server) starts its echo servers again in the pod's
// namespace; Dial and Ping from the pod run inside that namespace.
func TestExistingPodAfterRestart(t *testing.T) {
	testgate.Root(t)
	dir := t.TempDir()
	pod := &podRecord{Name: "cx-t", NetNS: fmt.Sprintf("weft-cxtest-%d-cx-t", os.Getpid()), IP: "127.0.0.1", MTU: 65536}
	if err := createNetNS(pod.NetNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := namedns.Delete(pod.NetNS); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for run := 1; run <= 2; run++ { // the second Server is the agent after a restart
		s := New(Config{Node: "n1", StateDir: dir}, slog.New(slog.DiscardHandler))
		if err := s.saveRecord(pod); err != nil {
			t.Fatal(err)
		}
		client := serve(t, s)
		p, err := client.CreateTestPod(ctx, &agentapi.CreateTestPodRequest{Name: "cx-t"})
		if err != nil || p.Created || p.Ip != "127.0.0.1" || p.Netns != pod.NetNS {
			t.Fatalf("run %d: CreateTestPod of the existing pod: %v, %v; want it reused", run, p, err)
		}
		stream, err := client.Dial(ctx)
		if err == nil {
			err = stream.Send(&agentapi.DialRequest{From: "cx-t", Network: "tcp", Address: "127.0.0.1:7070"})
		}
		if err != nil {
			t.Fatal(err)
		}
		var greeting string
		for err == nil && !strings.Contains(greeting, "\n") {
			var r *agentapi.DialResponse
			if r, err = stream.Recv(); err == nil {
				greeting += string(r.Data)
			}
		}
		if line, _, _ := strings.Cut(greeting, "\n"); err != nil || !strings.HasSuffix(line, " at cx-t") {
			t.Errorf("run %d: dial the pod's echo server from inside it: %q, %v", run, greeting, err)
		}
		stream.CloseSend()
		if _, err := client.Ping(ctx, &agentapi.PingRequest{From: "cx-t", Dst: "127.0.0.1", TimeoutMs: 2000}); err != nil {
			t.Errorf("run %d: ping inside the pod: %v", run, err)
		}
		s.Close()
	}
}

// serve serves s on a unix socket in a temporary directory and returns a
// client of it.
func serve(t *testing.T, s *Server) agentapi.ConnectivityClient {
	t.Helper()
	sock := t.TempDir() + "/agent.sock"
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	agentapi.RegisterConnectivityServer(srv, s)
	go srv.Serve(l) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return agentapi.NewConnectivityClient(conn)
}
