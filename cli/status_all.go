package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/testenv"
)

// nodeStatus is one agent's answer (or why there is none).
type nodeStatus struct {
	Node   string                   `json:"node"`
	Status *agentapi.StatusResponse `json:"status,omitempty"`
	Error  string                   `json:"error,omitempty"`
}

// allNodesStatus asks every agent of a testenv environment for its status
// and prints one line per node after a summary, like cilium status's
// DaemonSet lines. It fails when an agent does not answer or reports a
// problem of its own.
func allNodesStatus(cmd *cobra.Command, o *options) error {
	if o.socketFlag {
		return fmt.Errorf("--all-nodes reads every node of a testenv environment (--name), not one --socket")
	}
	e, err := testenv.Load(o.envName(), nil, cliLogger(cmd))
	if err != nil {
		return err
	}
	var all []nodeStatus
	for _, n := range e.Nodes {
		ns := nodeStatus{Node: n.Name}
		ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
		a, closeFn, err := agentapi.Dial(ctx, n.Socket)
		if err == nil {
			ns.Status, err = a.Status(ctx, &agentapi.StatusRequest{})
			closeFn()
		}
		cancel()
		if err != nil {
			ns.Error = err.Error()
		}
		all = append(all, ns)
	}
	var failing []string
	for _, ns := range all {
		if ns.Error != "" {
			failing = append(failing, ns.Node+": "+ns.Error)
		} else if p := statusProblems(ns.Status); len(p) > 0 {
			failing = append(failing, ns.Node+": "+strings.Join(p, "; "))
		}
	}
	if err := o.printer(cmd).print(allNodesJSON(all), func(w io.Writer) error { return writeAllNodes(w, e.Name, all) }); err != nil {
		return err
	}
	if len(failing) > 0 {
		return fmt.Errorf("%d of %d agents of environment %q are unhealthy or unreachable:\n  %s", len(failing), len(all), e.Name, strings.Join(failing, "\n  "))
	}
	return nil
}

// allNodesJSON is -o json|yaml: one object per node, each agent's status
// with the API's field names.
func allNodesJSON(all []nodeStatus) []map[string]any {
	out := make([]map[string]any, 0, len(all))
	for _, ns := range all {
		m := map[string]any{"node": ns.Node}
		if ns.Error != "" {
			m["error"] = ns.Error
		}
		if ns.Status != nil {
			opts := protojson.MarshalOptions{UseProtoNames: true}
			if raw, err := opts.Marshal(ns.Status); err == nil {
				m["status"] = json.RawMessage(raw)
			}
		}
		out = append(out, m)
	}
	return out
}

// writeAllNodes prints the summary and the per-node table.
func writeAllNodes(w io.Writer, env string, all []nodeStatus) error {
	ready, versions := 0, map[string]int{}
	for _, ns := range all {
		if ns.Error == "" && len(statusProblems(ns.Status)) == 0 {
			ready++
		}
		if ns.Status != nil {
			versions[orDash(ns.Status.GetVersion())]++
		}
	}
	var vs []string
	for v, n := range versions {
		vs = append(vs, fmt.Sprintf("%s ×%d", v, n))
	}
	fmt.Fprintf(w, "Environment:  %s\n", env)
	fmt.Fprintf(w, "Agents:       %d/%d ready\n", ready, len(all))
	fmt.Fprintf(w, "Versions:     %s\n\n", orDash(strings.Join(vs, ", ")))
	t := newTable("Node", "Cluster", "Agent", "Store", "Endpoints", "Node health", "Remote clusters")
	for _, ns := range all {
		st := ns.Status
		if st == nil {
			t.add(ns.Node, "-", "FAIL "+ns.Error, "-", "-", "-", "-")
			continue
		}
		agent := "OK  up " + orDash(st.GetUptime())
		if p := statusProblems(st); len(p) > 0 {
			agent = "FAIL  " + strings.Join(p, "; ")
		}
		store := "OK"
		if s := st.GetStore(); s.GetError() != "" || !s.GetQuorum() {
			store = "FAIL"
		}
		reach, local := 0, 0
		for _, h := range st.GetHealth() {
			if h.GetCluster() != "" && h.GetCluster() != st.GetCluster() {
				continue
			}
			local++
			if h.GetReachable() {
				reach++
			}
		}
		connected := 0
		for _, rc := range st.GetRemoteClusters() {
			if rc.GetConnected() && rc.GetSynced() {
				connected++
			}
		}
		remotes := "-"
		if n := len(st.GetRemoteClusters()); n > 0 {
			remotes = fmt.Sprintf("%d/%d synced", connected, n)
		}
		health := "not probed yet"
		if local > 0 {
			health = fmt.Sprintf("%d/%d reachable", reach, local)
		}
		t.add(ns.Node, st.GetCluster(), agent, store, itoa(st.GetEndpoints()), health, remotes)
	}
	return t.write(w)
}
