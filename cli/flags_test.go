package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// TestErrors checks the messages of bad flags and of agents that fail.
func TestErrors(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	delete(fa.tables, "ct")
	serve(t, socket, fa)
	hung := filepath.Join(dir, "hung.sock")
	serve(t, hung, &fakeAgent{hang: true})
	old := filepath.Join(dir, "old.sock")
	serve(t, old, &agentapi.UnimplementedAgentServer{})
	storeless := filepath.Join(dir, "storeless.sock")
	serve(t, storeless, &fakeAgent{listErr: status.Error(codes.Unavailable, "list identities: etcdserver: request timed out")})

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
	}{
		{name: "unknown output", args: []string{"--socket", socket, "-o", "xml", "node", "list"},
			wantErr: `parse --output "xml": want one of table, json, yaml`},
		{name: "unknown output from WEFT_OUTPUT", args: []string{"--socket", socket, "node", "list"}, env: map[string]string{"WEFT_OUTPUT": "wide"},
			wantErr: `parse --output "wide": want one of table, json, yaml`},
		{name: "zero timeout", args: []string{"--socket", socket, "--timeout", "0s", "node", "list"},
			wantErr: `parse --timeout 0s: want a positive duration such as 5s or 1m`},
		{name: "bad WEFT_TIMEOUT", args: []string{"--socket", socket, "node", "list"}, env: map[string]string{"WEFT_TIMEOUT": "soon"},
			wantErr: `read WEFT_TIMEOUT="soon": time: invalid duration "soon"`},
		{name: "agent gives no answer", args: []string{"--socket", hung, "--timeout", "50ms", "status"},
			wantErr: "ask the agent's status: weft-agent at " + hung + " gave no answer within 50ms (--timeout): is it running and not stuck?"},
		{name: "agent without the call", args: []string{"--socket", old, "node", "list"},
			wantErr: "list nodes: weft-agent at " + old + " does not serve it (method ListNodes not implemented): is the agent older than this CLI?"},
		{name: "agent without its store", args: []string{"--socket", storeless, "identity", "list"},
			wantErr: "list identities: weft-agent at " + storeless + " cannot answer now: list identities: etcdserver: request timed out (check its store with weft status)"},
		{name: "agent refuses", args: []string{"--socket", socket, "bpf", "ct", "list"},
			wantErr: `dump BPF map ct: unknown map "ct": want tunnel, ipcache, endpoints, lb, policy, ct or metrics`},
		{name: "unknown command", args: []string{"nodes"},
			wantErr: "unknown command \"nodes\" for \"weft\"\n\nDid you mean this?\n\tnode\n"},
		{name: "extra argument", args: []string{"--socket", socket, "node", "list", "c1-n1"},
			wantErr: `unknown command "c1-n1" for "weft node list"`},
		{name: "unknown shell", args: []string{"completion", "pwsh"},
			wantErr: `invalid argument "pwsh" for "weft completion"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, tc.env, tc.args...)
			if r.err == nil || r.err.Error() != tc.wantErr {
				t.Fatalf("error\n%v\nwant\n%s", r.err, tc.wantErr)
			}
			if r.stdout != "" {
				t.Errorf("printed %q, want nothing", r.stdout)
			}
		})
	}
}

// TestHelpTeachesByExample checks that every command's help has an example
// and a short description. The testenv and connectivity commands are tested
// by their owners.
func TestHelpTeachesByExample(t *testing.T) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() == "testenv" || c.Name() == "connectivity" {
			return
		}
		if c.Example == "" {
			t.Errorf("%q has no example in its help", c.CommandPath())
		}
		if c.Short == "" {
			t.Errorf("%q has no short description", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand("dev"))

	r := runCLI(t, shortTempDir(t), nil, "service", "list", "--help")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"Examples:\n  $ weft service list\n", "1 => 10.100.1.5:8080 (active)", "--socket string", "-o, --output string"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weft service list --help lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestCompletion checks the completion scripts and the dynamic completion
// of --name, --node and -o.
func TestCompletion(t *testing.T) {
	root := testenvTree(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"bash", []string{"completion", "bash"}, "# bash completion V2 for weft"},
		{"zsh", []string{"completion", "zsh"}, "#compdef weft"},
		{"fish", []string{"completion", "fish"}, "# fish completion for weft"},
		{"--name", []string{"__complete", "--name", ""}, "bare\ne2e\nempty\nnested\nodd\nweft\n:4\n"},
		{"--node", []string{"__complete", "--name", "e2e", "--node", ""}, "c1-n2\nc1-n1\n:4\n"},
		{"--node of the default environment", []string{"__complete", "--node", ""}, "c3-n1\n:4\n"},
		{"-o", []string{"__complete", "-o", ""}, "table\njson\nyaml\n:4\n"},
		{"endpoint get", []string{"--name", "e2e", "__complete", "endpoint", "get", ""},
			"default/web-1\tendpoint 7, 10.100.1.5/32\ndefault/client\tendpoint 12, 10.100.1.6/32\n:4\n"},
		{"identity get via WEFT_SOCKET", []string{"__complete", "identity", "get", ""},
			"1\treserved:host\n65792\tk8s:app=web,k8s:io.kubernetes.pod.namespace=default\n:4\n"},
		{"endpoint get without an agent", []string{"--socket", "/nonexistent/agent.sock", "__complete", "endpoint", "get", ""}, ":4\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, root, map[string]string{"WEFT_SOCKET": filepath.Join(root, "weft/c3-n1/agent.sock")}, tc.args...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !strings.Contains(r.stdout, tc.want) {
				t.Errorf("weft %s printed\n%s\nwant it to contain\n%s", strings.Join(tc.args, " "), r.stdout, tc.want)
			}
		})
	}
}
