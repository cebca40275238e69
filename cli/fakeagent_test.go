package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
)

// fakeAgent answers the agent API with fixed data. It tests the CLI's flag
// handling and formatting only; e2e tests drive the CLI against real agents.
type fakeAgent struct {
	agentapi.UnimplementedAgentServer

	status     *agentapi.StatusResponse
	nodes      *agentapi.ListNodesResponse
	endpoints  *agentapi.ListEndpointsResponse
	identities *agentapi.ListIdentitiesResponse
	ipcache    *agentapi.ListIPCacheResponse
	services   *agentapi.ListServicesResponse
	tables     map[string]*agentapi.Table
	// hang makes Status wait for the caller to give up.
	hang bool
	// listErr is the answer to ListIdentities when set.
	listErr error

	mu          sync.Mutex
	statusCalls int
	// reconnectAt, when set, makes every remote cluster connected from the
	// reconnectAt-th Status call on (a remote that comes back).
	reconnectAt int
	lastStatus  *agentapi.StatusRequest
	lastGetByEP *agentapi.GetEndpointRequest
}

func (f *fakeAgent) Status(ctx context.Context, req *agentapi.StatusRequest) (*agentapi.StatusResponse, error) {
	f.mu.Lock()
	f.lastStatus = req
	f.statusCalls++
	if f.reconnectAt > 0 && f.statusCalls >= f.reconnectAt {
		for _, r := range f.status.RemoteClusters {
			r.Connected, r.Error = true, ""
		}
	}
	resp := proto.Clone(f.status).(*agentapi.StatusResponse)
	f.mu.Unlock()
	if f.hang {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return resp, nil
}

func (f *fakeAgent) statusRequest() *agentapi.StatusRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastStatus
}

func (f *fakeAgent) ListNodes(context.Context, *agentapi.ListNodesRequest) (*agentapi.ListNodesResponse, error) {
	return f.nodes, nil
}

func (f *fakeAgent) ListEndpoints(context.Context, *agentapi.ListEndpointsRequest) (*agentapi.ListEndpointsResponse, error) {
	return f.endpoints, nil
}

func (f *fakeAgent) GetEndpoint(_ context.Context, req *agentapi.GetEndpointRequest) (*agentapi.Endpoint, error) {
	f.mu.Lock()
	f.lastGetByEP = req
	f.mu.Unlock()
	for _, ep := range f.endpoints.GetEndpoints() {
		ip, _, _ := strings.Cut(ep.GetIpv4(), "/")
		switch {
		case req.GetId() != 0 && req.GetId() == ep.GetId(),
			req.GetContainerId() != "" && req.GetContainerId() == ep.GetContainerId(),
			req.GetIp() != "" && req.GetIp() == ip,
			req.GetPod() != "" && req.GetPod() == ep.GetNamespace()+"/"+ep.GetPodName():
			return ep, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no endpoint matches %v", req)
}

func (f *fakeAgent) ListIdentities(context.Context, *agentapi.ListIdentitiesRequest) (*agentapi.ListIdentitiesResponse, error) {
	if f.listErr != nil {
		return nil, f.listErr
	}
	return f.identities, nil
}

func (f *fakeAgent) GetIdentity(_ context.Context, req *agentapi.GetIdentityRequest) (*agentapi.Identity, error) {
	for _, id := range f.identities.GetIdentities() {
		if id.GetId() == req.GetId() {
			return id, nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "identity %d not found", req.GetId())
}

func (f *fakeAgent) ListIPCache(context.Context, *agentapi.ListIPCacheRequest) (*agentapi.ListIPCacheResponse, error) {
	return f.ipcache, nil
}

func (f *fakeAgent) ListServices(context.Context, *agentapi.ListServicesRequest) (*agentapi.ListServicesResponse, error) {
	return f.services, nil
}

func (f *fakeAgent) DumpBPF(_ context.Context, req *agentapi.DumpBPFRequest) (*agentapi.Table, error) {
	if t, ok := f.tables[req.GetMap()]; ok {
		return t, nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "unknown map %q: want tunnel, ipcache, endpoints, lb, policy, ct or metrics", req.GetMap())
}

// serve runs srv on a unix socket at path (its directory is created) until
// the test ends. The listener exists when serve returns.
func serve(t *testing.T, path string, srv agentapi.AgentServer) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen on %s: %v", path, err)
	}
	s := grpc.NewServer()
	agentapi.RegisterAgentServer(s, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
}

// shortTempDir is a temporary directory with a path short enough for unix
// socket names (108 bytes), removed when the test ends.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "weft-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// testNow is the clock of every test: heartbeats are shown relative to it.
var testNow = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// cli runs weft with args against root (the testenv root) and env (the
// WEFT_* variables), and returns what the user would see.
type result struct {
	stdout, stderr string
	err            error
}

func runCLI(t *testing.T, testenvRoot string, env map[string]string, args ...string) result {
	t.Helper()
	o := defaultOptions()
	o.testenvRoot = testenvRoot
	o.now = func() time.Time { return testNow }
	o.getenv = func(k string) string { return env[k] }
	o.chart = os.DirFS("../deploy/helm/weft") // weft install's
	root := newRootCommand("v9.9.9-test", o)
	var stdout, stderr strings.Builder
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

func clone[M proto.Message](m M) M { return proto.Clone(m).(M) }
