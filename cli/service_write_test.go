package cli

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
)

// fakeServices records what the CLI sends and keeps one stored service.
type fakeServices struct {
	agentapi.UnimplementedServicesServer
	mu      sync.Mutex
	applied []*agentapi.ApplyServicesRequest
	stored  map[string]*agentapi.ServiceSpec
}

func (f *fakeServices) Apply(_ context.Context, req *agentapi.ApplyServicesRequest) (*agentapi.ApplyServicesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, req)
	resp := &agentapi.ApplyServicesResponse{}
	for _, s := range req.GetServices() {
		s = proto.Clone(s).(*agentapi.ServiceSpec)
		if s.ClusterIp == "" {
			s.ClusterIp = "10.96.0.1"
		}
		f.stored[s.Namespace+"/"+s.Name] = s
		resp.Services = append(resp.Services, s)
	}
	return resp, nil
}

func (f *fakeServices) Get(_ context.Context, req *agentapi.GetServiceRequest) (*agentapi.ServiceSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.stored[req.Namespace+"/"+req.Name]; ok {
		return s, nil
	}
	return nil, status.Errorf(codes.NotFound, "service %s/%s not found", req.Namespace, req.Name)
}

func (f *fakeServices) Delete(_ context.Context, req *agentapi.DeleteServiceRequest) (*agentapi.DeleteServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.stored[req.Namespace+"/"+req.Name]
	delete(f.stored, req.Namespace+"/"+req.Name)
	return &agentapi.DeleteServiceResponse{Existed: ok}, nil
}

func (f *fakeServices) applies() []*agentapi.ApplyServicesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*agentapi.ApplyServicesRequest(nil), f.applied...)
}

func serveServices(t *testing.T, path string, f *fakeServices) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	agentapi.RegisterServicesServer(s, f)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Stop(); <-done })
}

func TestServiceWrite(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	f := &fakeServices{stored: map[string]*agentapi.ServiceSpec{}}
	serveServices(t, socket, f)
	run := func(args ...string) result { return runCLI(t, dir, nil, append(args, "--socket", socket)...) }

	r := run("service", "create", "shop/web", "--type", "NodePort", "--port", "http=80:8080", "--selector", "app=web", "--annotation", "service.cilium.io/global=true")
	if r.err != nil {
		t.Fatalf("create: %v\n%s", r.err, r.stderr)
	}
	got := f.applies()
	if len(got) != 1 || got[0].Mode != agentapi.ApplyMode_APPLY_MODE_CREATE {
		t.Fatalf("applies %v", got)
	}
	s := got[0].Services[0]
	if s.Namespace != "shop" || s.Type != "NodePort" || s.Ports[0].TargetPort != 8080 || s.Selector["app"] != "web" || s.Annotations["service.cilium.io/global"] != "true" {
		t.Fatalf("sent %v", s)
	}
	if !strings.Contains(r.stdout, "10.96.0.1") || !strings.Contains(r.stdout, "http=80:8080/TCP") {
		t.Fatalf("create output:\n%s", r.stdout)
	}

	r = run("service", "update", "shop/web", "--session-affinity", "ClientIP")
	if r.err != nil {
		t.Fatalf("update: %v", r.err)
	}
	got = f.applies()
	if u := got[1].Services[0]; got[1].Mode != agentapi.ApplyMode_APPLY_MODE_UPDATE || u.SessionAffinity != "ClientIP" ||
		u.Selector["app"] != "web" || u.ClusterIp != "10.96.0.1" || len(u.Ports) != 1 {
		t.Fatalf("update sent %v", got[1])
	}

	// One annotation changes; the others stay (shared=false on a global
	// service must not make it local), and the change is said.
	r = run("service", "update", "shop/web", "--annotation", "service.cilium.io/shared=false")
	if r.err != nil {
		t.Fatalf("update annotation: %v", r.err)
	}
	if u := f.applies()[2].Services[0]; u.Annotations["service.cilium.io/global"] != "true" || u.Annotations["service.cilium.io/shared"] != "false" {
		t.Fatalf("update of one annotation sent %v", u.Annotations)
	}
	if !strings.Contains(r.stderr, `annotation service.cilium.io/shared: set to "false"`) {
		t.Fatalf("update did not say what changed: %q", r.stderr)
	}
	r = run("service", "update", "shop/web", "--annotation", "service.cilium.io/shared-")
	if u := f.applies()[3].Services[0]; r.err != nil || u.Annotations["service.cilium.io/global"] != "true" || len(u.Annotations) != 1 {
		t.Fatalf("remove one annotation: %v, sent %v", r.err, u.Annotations)
	}
	if !strings.Contains(r.stderr, `annotation service.cilium.io/shared: removed (was "false")`) {
		t.Fatalf("removal not said: %q", r.stderr)
	}
	if r := run("service", "update", "shop/web", "--annotation", "nosuch-"); r.err == nil || !strings.Contains(r.err.Error(), `has no annotation "nosuch" to remove`) {
		t.Fatalf("removing a missing annotation: %v", r.err)
	}
	if n := len(f.applies()); n != 4 {
		t.Fatalf("a refused update reached the agent: %d applies", n)
	}

	for _, tc := range []struct{ name, want string }{
		{"bad protocol", `protocol "SCTP" is not TCP or UDP`},
		{"bad name", `name it [namespace/]name`},
	} {
		args := []string{"service", "create", "web", "--port", "80/SCTP"}
		if tc.name == "bad name" {
			args = []string{"service", "create", "a/b/c", "--port", "80"}
		}
		if r := run(args...); r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Fatalf("%s: %v, want %q", tc.name, r.err, tc.want)
		}
	}

	manifest := filepath.Join(dir, "svc.yaml")
	os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  ports: [{port: 443}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: bad}\nspec:\n  ports: [{port: 80}]\n  colour: blue\n"), 0o600)
	if r := run("service", "apply", "-f", manifest); r.err == nil || !strings.Contains(r.err.Error(), `document 2`) || !strings.Contains(r.err.Error(), `unknown field "colour"`) {
		t.Fatalf("apply of a bad manifest: %v", r.err)
	}
	if n := len(f.applies()); n != 4 {
		t.Fatalf("a bad manifest reached the agent: %d applies", n)
	}
	os.WriteFile(manifest, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: api}\nspec:\n  ports: [{port: 443}]\n"), 0o600)
	if r := run("service", "apply", "-f", manifest); r.err != nil {
		t.Fatalf("apply: %v", r.err)
	}
	if r := run("service", "get", "api", "-o", "json"); r.err != nil || !strings.Contains(r.stdout, `"cluster_ip": "10.96.0.1"`) {
		t.Fatalf("get: %v\n%s", r.err, r.stdout)
	}
	if r := run("service", "delete", "api"); r.err != nil || !strings.Contains(r.stdout, "service default/api deleted") {
		t.Fatalf("delete: %v\n%s", r.err, r.stdout)
	}
	if r := run("service", "get", "api"); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Fatalf("get after delete: %v", r.err)
	}
}
