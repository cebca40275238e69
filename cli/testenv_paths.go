package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// This file finds an agent socket of a testenv environment by the layout of
// docs/agent.md: /var/run/weft/testenv/<env>/<node>/agent.sock, with the
// environment's nodes listed in /var/run/weft/testenv/<env>/env.json.

const socketName = "agent.sock"

func envDir(root, name string) string { return filepath.Join(root, name) }

// testenvSocket returns the socket of node (the first node when empty) of
// environment name under root.
func testenvSocket(root, name, node string) (socket, resolvedNode string, err error) {
	if err := checkLabel("--name", name); err != nil {
		return "", "", err
	}
	dir := envDir(root, name)
	if _, err := os.Stat(dir); err != nil {
		known := listEnvironments(root)
		hint := "no environments exist"
		if len(known) > 0 {
			hint = "existing: " + strings.Join(known, ", ")
		}
		return "", "", fmt.Errorf("find testenv environment %q: %s does not exist (%s): is it up?", name, dir, hint)
	}
	nodes := environmentNodes(dir)
	if node == "" {
		if len(nodes) == 0 {
			return "", "", fmt.Errorf("find a node of testenv environment %q: %s lists no nodes and no directory under %s holds %s: is the environment up?",
				name, filepath.Join(dir, "env.json"), dir, socketName)
		}
		node = nodes[0]
	} else if err := checkLabel("--node", node); err != nil {
		return "", "", err
	} else if _, err := os.Stat(filepath.Join(dir, node)); err != nil {
		return "", "", fmt.Errorf("find node %q in testenv environment %q: %s does not exist; nodes: %s",
			node, name, filepath.Join(dir, node), strings.Join(nodes, ", "))
	}
	return filepath.Join(dir, node, socketName), node, nil
}

// checkLabel refuses values that would leave the testenv tree.
func checkLabel(flag, v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, `/\`) {
		return fmt.Errorf("parse %s %q: want a name such as c1-n1, without slashes", flag, v)
	}
	return nil
}

// envFile holds the only fields of env.json the CLI reads. The testenv
// engineer owns the file; it is parsed leniently: nodes at the top level,
// or nodes of each cluster.
type envFile struct {
	Nodes    []envNode `json:"nodes"`
	Clusters []struct {
		Nodes []envNode `json:"nodes"`
	} `json:"clusters"`
}

type envNode struct {
	Name string `json:"name"`
}

// environmentNodes lists the nodes of the environment in dir: those of
// env.json in its order, then any other directory holding an agent socket,
// sorted by name.
func environmentNodes(dir string) []string {
	var nodes []string
	add := func(n string) {
		if n != "" && checkLabel("", n) == nil && !slices.Contains(nodes, n) {
			nodes = append(nodes, n)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "env.json")); err == nil {
		// A field of an unexpected type is skipped, the rest still read.
		var f envFile
		_ = json.Unmarshal(b, &f)
		for _, n := range f.Nodes {
			add(n.Name)
		}
		for _, c := range f.Clusters {
			for _, n := range c.Nodes {
				add(n.Name)
			}
		}
	}
	entries, _ := os.ReadDir(dir) // sorted by name
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), socketName)); err == nil {
			add(e.Name())
		}
	}
	return nodes
}

// listEnvironments names the environments under root, sorted.
func listEnvironments(root string) []string {
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}
