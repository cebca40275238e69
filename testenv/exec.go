package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Target is a place to run things: a node's namespace or a pod's
// namespace, each with the node's cgroup (so the socket load balancer of
// that node applies to processes started there).
type Target struct {
	Kind   string // "node" or "pod"
	Name   string
	Node   string // the node (itself, or the pod's node)
	NetNS  string
	Cgroup string
	env    string
}

// Target resolves "node/<name>", "pod/<name>", or a bare name (nodes
// first, then pods).
func (e *Env) Target(name string) (Target, error) {
	kind, bare, ok := strings.Cut(name, "/")
	if !ok {
		kind, bare = "", name
	}
	if kind == "" || kind == "node" {
		if n, err := e.Node(bare); err == nil {
			return Target{Kind: "node", Name: n.Name, Node: n.Name, NetNS: n.NetNS, Cgroup: n.Cgroup, env: e.Name}, nil
		}
	}
	if kind == "" || kind == "pod" {
		if p, err := e.Pod(bare); err == nil {
			n, err := e.Node(p.Node)
			if err != nil {
				return Target{}, err
			}
			return Target{Kind: "pod", Name: p.Name, Node: n.Name, NetNS: p.NetNS, Cgroup: n.Cgroup, env: e.Name}, nil
		}
	}
	if kind != "" && kind != "node" && kind != "pod" {
		return Target{}, fmt.Errorf("target %q: accepted are node/<node>, pod/<pod> or a bare node or pod name", name)
	}
	pods := "none"
	if len(e.Pods) > 0 {
		var names []string
		for _, p := range e.Pods {
			names = append(names, p.Name)
		}
		pods = strings.Join(names, ", ")
	}
	return Target{}, fmt.Errorf("target %q: no such node or pod in environment %q (nodes: %s; pods: %s)",
		name, e.Name, nodeNames(e.Nodes), pods)
}

func (t Target) String() string { return t.Kind + "/" + t.Name }

// Do runs fn on a locked OS thread inside the target's namespace: sockets
// it opens live there.
func (t Target) Do(fn func() error) error { return InNetNS(t.NetNS, fn) }

// Start starts cmd inside the target (cgroup first, then namespace),
// marked with the environment so Down ends it if the caller does not.
func (t Target) Start(cmd *exec.Cmd) error {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, MarkerVar+"="+t.env)
	if err := startCmd(cmd, t.NetNS, t.Cgroup); err != nil {
		return fmt.Errorf("start %s in %s: %w", cmd.Path, t, err)
	}
	return nil
}

// Run runs cmd inside the target and waits for it.
func (t Target) Run(cmd *exec.Cmd) error {
	if err := t.Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}

// Output runs args inside the target and returns the combined output.
func (t Target) Output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := t.Run(cmd); err != nil {
		return []byte(out.String()), fmt.Errorf("run %s in %s: %w: %s", strings.Join(args, " "), t, err, strings.TrimSpace(out.String()))
	}
	return []byte(out.String()), nil
}

// Exec runs args in target with the given standard streams and waits.
func (e *Env) Exec(ctx context.Context, target string, stdin io.Reader, stdout, stderr io.Writer, args ...string) error {
	if len(args) == 0 {
		return fmt.Errorf("exec in %q: no command given", target)
	}
	t, err := e.Target(target)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	return t.Run(cmd)
}
