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

	"github.com/weftnet/weft/api/agentapi"
)

// fakePolicy answers the Policy service with fixed data and records what
// it was asked.
type fakePolicy struct {
	agentapi.UnimplementedPolicyServer

	mu         sync.Mutex
	lastImport *agentapi.ImportPolicyRequest
	lastDelete *agentapi.DeletePolicyRequest
}

func (f *fakePolicy) Import(_ context.Context, req *agentapi.ImportPolicyRequest) (*agentapi.ImportPolicyResponse, error) {
	f.mu.Lock()
	f.lastImport = req
	f.mu.Unlock()
	if strings.Contains(string(req.GetDocuments()), "SCTP") {
		return nil, status.Error(codes.InvalidArgument, `import policies: nothing was stored: document 1 (CiliumNetworkPolicy default/x): spec.ingress[0].toPorts[0].ports[0].protocol: "SCTP" is not supported; accepted are TCP, UDP, ANY`)
	}
	return &agentapi.ImportPolicyResponse{Stored: !req.GetDryRun(), Documents: []*agentapi.ImportedDocument{
		{Index: 1, ApiVersion: "cilium.io/v2", Kind: "CiliumNetworkPolicy", Namespace: "default", Name: "deathstar"},
		{Index: 2, ApiVersion: "cilium.io/v2", Kind: "CiliumClusterwideNetworkPolicy", Name: "egress-limits"},
	}}, nil
}

func (f *fakePolicy) Delete(_ context.Context, req *agentapi.DeletePolicyRequest) (*agentapi.DeletePolicyResponse, error) {
	f.mu.Lock()
	f.lastDelete = req
	f.mu.Unlock()
	return &agentapi.DeletePolicyResponse{Existed: req.GetNamespace() == "default" && req.GetName() == "deathstar"}, nil
}

var deathstarDetail = &agentapi.PolicyDetail{
	Summary: &agentapi.PolicySummary{Namespace: "default", Name: "deathstar", ApiVersion: "cilium.io/v2", Kind: "CiliumNetworkPolicy",
		Source: "cli", Rules: 1, SelectedEndpoints: 1},
	Rules: []*agentapi.PolicyRuleDetail{{Selector: "any:class=deathstar, any:org=empire, k8s:io.kubernetes.pod.namespace=default",
		IngressEnforced: true, Ingress: []string{"allow endpoints {any:org=empire, k8s:io.kubernetes.pod.namespace=default} on 80/TCP"},
		Endpoints: []*agentapi.SelectedEndpoint{{Id: 7, Pod: "default/deathstar", Ipv4: "10.100.1.5", Identity: 65792}}}},
}

func (f *fakePolicy) Get(_ context.Context, req *agentapi.GetPolicyRequest) (*agentapi.PolicyDetail, error) {
	if req.GetNamespace() == "default" && req.GetName() == "deathstar" {
		return deathstarDetail, nil
	}
	return nil, status.Error(codes.NotFound, "no such policy")
}

func (f *fakePolicy) List(context.Context, *agentapi.ListPoliciesRequest) (*agentapi.ListPoliciesResponse, error) {
	return &agentapi.ListPoliciesResponse{Policies: []*agentapi.PolicySummary{deathstarDetail.Summary,
		{Name: "broken", Namespace: "default", Source: "kubernetes", Error: "spec.egress: expected a list"}}}, nil
}

func servePolicy(t *testing.T, path string, srv agentapi.PolicyServer) {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	agentapi.RegisterPolicyServer(s, srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(l) }()
	t.Cleanup(func() { s.Stop(); <-done })
}

func TestPolicyCommands(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fp := &fakePolicy{}
	servePolicy(t, socket, fp)
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("kind: CiliumNetworkPolicy\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		wantErr string
	}{
		{name: "import", args: []string{"policy", "import", "-f", file}, want: `imported cilium.io/v2 CiliumNetworkPolicy default/deathstar
imported cilium.io/v2 CiliumClusterwideNetworkPolicy egress-limits
`},
		{name: "import dry run", args: []string{"policy", "import", "-f", file, "--dry-run"}, want: `valid cilium.io/v2 CiliumNetworkPolicy default/deathstar
valid cilium.io/v2 CiliumClusterwideNetworkPolicy egress-limits
`},
		{name: "import without file", args: []string{"policy", "import"}, wantErr: "give the file with -f FILE"},
		{name: "delete", args: []string{"policy", "delete", "default/deathstar"}, want: "deleted policy default/deathstar\n"},
		{name: "delete missing clusterwide", args: []string{"policy", "delete", "gone"},
			wantErr: "no clusterwide policy gone in the store: nothing deleted (a name without a namespace is a clusterwide policy); see weft policy list"},
		{name: "delete namespaced by plain name", args: []string{"policy", "delete", "deathstar"},
			wantErr: "did you mean default/deathstar? (weft policy delete default/deathstar)"},
		{name: "delete missing namespaced", args: []string{"policy", "delete", "prod/deathstar"},
			wantErr: "no policy prod/deathstar in the store: nothing deleted; did you mean default/deathstar?"},
		{name: "bad name", args: []string{"policy", "get", "/x"}, wantErr: `policy "/x": name it <namespace>/<name>`},
		{name: "get missing", args: []string{"policy", "get", "deathstar"}, wantErr: "get policy deathstar: no such policy on " + socket + " (see weft policy list; a namespaced policy is named <namespace>/<name>)"},
		{name: "list", args: []string{"policy", "list"}, want: `NAME                KIND                                  RULES   ENDPOINTS   SOURCE
default/deathstar   CiliumNetworkPolicy                   1       1           cli
default/broken      error: spec.egress: expected a list   0       0           kubernetes
`},
		{name: "get", args: []string{"policy", "get", "default/deathstar"}, want: `Name:     default/deathstar
Kind:     cilium.io/v2 CiliumNetworkPolicy
Source:   cli
Rules:    1
Selects:  1 endpoint(s) on this node

#   SELECTOR                                                                       DIRECTION   RULE                                                                                  ENDPOINTS
0   any:class=deathstar, any:org=empire, k8s:io.kubernetes.pod.namespace=default   ingress     allow endpoints {any:org=empire, k8s:io.kubernetes.pod.namespace=default} on 80/TCP   7 default/deathstar 10.100.1.5
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("got error %v, want %q", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.stdout != tc.want {
				t.Errorf("got\n%s\nwant\n%s", r.stdout, tc.want)
			}
		})
	}
}

func TestPolicyImportStdinAndErrors(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fp := &fakePolicy{}
	servePolicy(t, socket, fp)
	o := defaultOptions()
	root := newRootCommand("test", o)
	var out strings.Builder
	root.SetOut(&out)
	root.SetIn(strings.NewReader("apiVersion: cilium.io/v2\n"))
	root.SetArgs([]string{"--socket", socket, "policy", "import", "-f", "-", "-n", "dev"})
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	fp.mu.Lock()
	got, ns := string(fp.lastImport.GetDocuments()), fp.lastImport.GetNamespace()
	fp.mu.Unlock()
	if got != "apiVersion: cilium.io/v2\n" {
		t.Errorf("the agent got %q, not standard input", got)
	}
	if ns != "dev" {
		t.Errorf("the agent got namespace %q, want dev (-n dev)", ns)
	}

	root = newRootCommand("test", defaultOptions())
	root.SetOut(&out)
	root.SetIn(strings.NewReader("protocol: SCTP\n"))
	root.SetArgs([]string{"--socket", socket, "policy", "import", "-f", "-"})
	err := root.ExecuteContext(t.Context())
	if err == nil || !strings.Contains(err.Error(), `nothing was stored: document 1 (CiliumNetworkPolicy default/x): spec.ingress[0].toPorts[0].ports[0].protocol: "SCTP" is not supported`) {
		t.Errorf("got %v", err)
	}
}
