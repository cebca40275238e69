package cli

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testenvTree lays out environments the way testenv does (docs/agent.md)
// with a fake agent per node socket, and returns the root.
//
//	e2e/     env.json lists c1-n2 before c1-n1
//	bare/    no env.json; a-node has no socket, c2-n1 and c2-n2 have
//	weft/    the default environment, node c3-n1
//	nested/  env.json lists nodes under clusters
//	odd/     env.json of another shape: nodes found by directory
//	empty/   nothing
func testenvTree(t *testing.T) string {
	t.Helper()
	root := shortTempDir(t)
	files := map[string]string{
		"e2e/env.json":    `{"name":"e2e","nodes":[{"name":"c1-n2","netns":"weft-e2e-c1-n2"},{"name":"c1-n1"}],"store":{"endpoints":["x"]}}`,
		"nested/env.json": `{"clusters":[{"name":"c1","nodes":[{"name":"x1"}]}]}`,
		"odd/env.json":    `{"nodes":"c9-n9","clusters":7}`,
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"bare/a-node", "empty"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range []string{"e2e/c1-n1", "e2e/c1-n2", "bare/c2-n1", "bare/c2-n2", "weft/c3-n1", "nested/x1", "odd/o1"} {
		serve(t, filepath.Join(root, node, socketName), testAgent(filepath.Base(node)))
	}
	return root
}

// TestTargetResolution checks which agent --socket, --name, --node and the
// WEFT_* variables reach, and the errors when none can be found.
func TestTargetResolution(t *testing.T) {
	root := testenvTree(t)
	plain := filepath.Join(root, "plain.sock")
	serve(t, plain, testAgent("plain"))

	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantNode string
		wantErr  string
	}{
		{name: "first node of env.json", args: []string{"--name", "e2e"}, wantNode: "c1-n2"},
		{name: "--node", args: []string{"--name", "e2e", "--node", "c1-n1"}, wantNode: "c1-n1"},
		{name: "no env.json: first directory with a socket", args: []string{"--name", "bare"}, wantNode: "c2-n1"},
		{name: "nodes under clusters", args: []string{"--name", "nested"}, wantNode: "x1"},
		{name: "env.json of another shape", args: []string{"--name", "odd"}, wantNode: "o1"},
		{name: "--node alone: default environment", args: []string{"--node", "c3-n1"}, wantNode: "c3-n1"},
		{name: "--socket", args: []string{"--socket", plain}, wantNode: "plain"},
		{name: "WEFT_SOCKET", env: map[string]string{"WEFT_SOCKET": plain}, wantNode: "plain"},
		{name: "WEFT_NAME and WEFT_NODE", env: map[string]string{"WEFT_NAME": "e2e", "WEFT_NODE": "c1-n1"}, wantNode: "c1-n1"},
		{name: "--node beats WEFT_NODE", args: []string{"--node", "c1-n1"}, env: map[string]string{"WEFT_NAME": "e2e", "WEFT_NODE": "c1-n2"}, wantNode: "c1-n1"},
		{name: "--socket beats WEFT_NAME", args: []string{"--socket", plain}, env: map[string]string{"WEFT_NAME": "e2e"}, wantNode: "plain"},
		{name: "--name beats WEFT_SOCKET", args: []string{"--name", "e2e"}, env: map[string]string{"WEFT_SOCKET": plain}, wantNode: "c1-n2"},
		{
			name:    "--socket and --name",
			args:    []string{"--socket", plain, "--name", "e2e"},
			wantErr: "choose the agent by --socket (one agent) or by --name/--node (a testenv node), not both",
		},
		{
			name:    "unknown environment",
			args:    []string{"--name", "nope"},
			wantErr: `find testenv environment "nope": ` + root + `/nope does not exist (existing: bare, e2e, empty, nested, odd, weft): is it up?`,
		},
		{
			name:    "unknown node",
			args:    []string{"--name", "e2e", "--node", "c9-n9"},
			wantErr: `find node "c9-n9" in testenv environment "e2e": ` + root + `/e2e/c9-n9 does not exist; nodes: c1-n2, c1-n1`,
		},
		{
			name:    "environment without nodes",
			args:    []string{"--name", "empty"},
			wantErr: `find a node of testenv environment "empty": ` + root + `/empty/env.json lists no nodes and no directory under ` + root + `/empty holds agent.sock: is the environment up?`,
		},
		{
			name:    "node without a running agent",
			args:    []string{"--name", "bare", "--node", "a-node"},
			wantErr: "reach weft-agent at " + root + "/bare/a-node/agent.sock (node a-node of testenv environment bare): is the agent running? (stat " + root + "/bare/a-node/agent.sock: no such file or directory)",
		},
		{
			name:    "answers name the testenv node",
			args:    []string{"--name", "e2e", "identity", "get", "4242"},
			wantErr: "get identity 4242: no such identity on node c1-n2 of testenv environment e2e; see weft identity list",
		},
		{
			name:    "name with a slash",
			args:    []string{"--name", "../etc"},
			wantErr: `parse --name "../etc": want a name such as c1-n1, without slashes`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if !slices.Contains(args, "identity") {
				args = append(args, "status")
			}
			r := runCLI(t, root, tc.env, args...)
			if tc.wantErr != "" {
				if r.err == nil || r.err.Error() != tc.wantErr {
					t.Fatalf("error\n%v\nwant\n%s", r.err, tc.wantErr)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("weft %s status: %v", strings.Join(tc.args, " "), r.err)
			}
			if want := "Node:         " + tc.wantNode + " (cluster c1, id 1)\n"; !strings.HasPrefix(r.stdout, want) {
				t.Errorf("reached\n%s\nwant the agent of node %s", r.stdout, tc.wantNode)
			}
		})
	}
}

// TestUnreachableAgent checks the message and failure when nothing answers
// at the socket, for every command that asks the agent.
func TestUnreachableAgent(t *testing.T) {
	dir := shortTempDir(t)
	missing := filepath.Join(dir, "missing.sock")
	// A socket file left by an agent that died: connecting is refused.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	commands := [][]string{
		{"status"}, {"node", "list"}, {"endpoint", "list"}, {"endpoint", "get", "7"},
		{"identity", "list"}, {"identity", "get", "1"}, {"ipcache", "list"}, {"service", "list"},
		{"bpf", "tunnel", "list"}, {"bpf", "ct", "list"},
	}
	for _, socket := range []string{missing, stale} {
		for _, args := range commands {
			t.Run(filepath.Base(socket)+"/"+strings.Join(args, "_"), func(t *testing.T) {
				r := runCLI(t, dir, nil, append([]string{"--socket", socket}, args...)...)
				want := "reach weft-agent at " + socket + ": is the agent running? ("
				if r.err == nil || !strings.HasPrefix(r.err.Error(), want) {
					t.Fatalf("error %v, want it to start with %q", r.err, want)
				}
				if r.stdout != "" {
					t.Errorf("printed %q, want nothing", r.stdout)
				}
			})
		}
	}
}
