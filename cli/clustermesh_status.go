package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
)

// meshStatus is what `weft clustermesh status` reports (and prints with -o json).
type meshStatus struct {
	Clusters []meshClusterStatus `json:"clusters"`
	Nodes    []meshNodeStatus    `json:"nodes"`
	Problems []string            `json:"problems,omitempty"`
}

type meshClusterStatus struct {
	Name     string   `json:"name"`
	ID       uint32   `json:"id,omitempty"`
	Routing  string   `json:"routing,omitempty"`
	PodCIDRs []string `json:"pod_cidrs,omitempty"`
	// GlobalCIDR is the cluster's global addressing range, when set;
	// RemoteGlobalCIDRs those of its remotes that have one, by name.
	GlobalCIDR        string            `json:"global_cidr,omitempty"`
	RemoteGlobalCIDRs map[string]string `json:"remote_global_cidrs,omitempty"`
	Endpoints         []string          `json:"endpoints,omitempty"`
	Remotes           []string          `json:"remotes"`
	Readers           []string          `json:"readers"`
	Error             string            `json:"error,omitempty"`
}

type meshNodeStatus struct {
	Node    string                    `json:"node"`
	Cluster string                    `json:"cluster"`
	Remotes []*agentapi.RemoteCluster `json:"remotes"`
	Error   string                    `json:"error,omitempty"`
}

func newMeshStatusCommand(m *meshOptions) *cobra.Command {
	var (
		wait         bool
		waitDuration time.Duration
	)
	cmd := &cobra.Command{
		Use:         "status [cluster...]",
		Annotations: structuredOutput,
		Short:       "Show each cluster's remotes and, per node, which are connected and synced",
		Long: `Show, for each cluster (default: every cluster with a clustermesh directory),
what its apiserver serves and which remote clusters it connects to; then,
for each node (every node of the testenv environment with --name, else the
agent of this host), which remote clusters its agent is connected to and
synced with, how many nodes and endpoints it learnt, and errors with hints.
With --context, the cluster is the one Weft was installed on there, asked
through its Service; nodes are listed only with --name or --socket (the
agents' API is a root-only socket on each node).
Fails when something is not connected or synced; --wait polls until it is,
for at most --wait-duration. JSON field names are snake_case, as in every
other -o json output.`,
		Example: `  weft --name mesh clustermesh status
  weft --name mesh clustermesh status c1 --wait --wait-duration 1m -o json
  weft clustermesh status --context east --wait`,
		RunE: func(cmd *cobra.Command, args []string) error {
			clusters := args
			if m.kubeMode(cmd) {
				if len(args) > 0 {
					return fmt.Errorf("status --context: the cluster is the one installed there; give no cluster names (got %v)", args)
				}
				ts, cleanup, err := m.kubeTargets(cmd, m.kube)
				if err != nil {
					return err
				}
				defer cleanup()
				m.pinned = map[string]clustermesh.Target{ts[0].Name: ts[0]}
				clusters = []string{ts[0].Name}
			}
			if len(clusters) == 0 {
				clusters = meshClusters(m.root())
			}
			if len(clusters) == 0 {
				return fmt.Errorf("status: no clustermesh directory under %s; run `weft clustermesh enable <cluster>` first", m.root())
			}
			if _, err := m.targets(clusters); err != nil {
				return err
			}
			if waitDuration <= 0 {
				return fmt.Errorf("--wait-duration %v: give a positive duration, e.g. 2m", waitDuration)
			}
			deadline := time.Now()
			if wait {
				deadline = deadline.Add(waitDuration)
			}
			for {
				st := m.collect(cmd, clusters)
				if len(st.Problems) == 0 || time.Now().After(deadline) {
					if err := m.o.printer(cmd).print(st, func(w io.Writer) error { return printMeshStatus(w, st) }); err != nil {
						return err
					}
					if len(st.Problems) > 0 {
						return fmt.Errorf("clustermesh is not healthy: %d problem(s), see above", len(st.Problems))
					}
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(500 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "poll until every node is connected to and synced with every remote (at most --wait-duration)")
	cmd.Flags().DurationVar(&waitDuration, "wait-duration", 5*time.Minute, "how long --wait polls before it fails")
	return cmd
}

// collect asks every cluster's apiserver and every node's agent.
func (m *meshOptions) collect(cmd *cobra.Command, clusters []string) meshStatus {
	ctx := cmd.Context()
	var st meshStatus
	want := map[string][]string{} // cluster → remotes it should reach
	for _, name := range clusters {
		cs := meshClusterStatus{Name: name, Remotes: []string{}, Readers: []string{}}
		t, err := m.target(name)
		if err == nil {
			var s clustermesh.ClusterStatus
			actx, cancel := context.WithTimeout(ctx, m.o.timeout)
			s, err = clustermesh.Status(actx, t)
			cancel()
			if err == nil {
				cs.ID, cs.Routing, cs.Endpoints, cs.Readers = s.Info.ID, s.Info.Routing, s.Info.Endpoints, s.Readers
				for _, p := range s.Info.PodCIDRs {
					cs.PodCIDRs = append(cs.PodCIDRs, p.String())
				}
				if s.Info.Global() {
					cs.GlobalCIDR = s.Info.GlobalCIDR.String()
				}
				for _, r := range s.Remotes {
					cs.Remotes = append(cs.Remotes, r.Name)
					if r.Global() {
						if cs.RemoteGlobalCIDRs == nil {
							cs.RemoteGlobalCIDRs = map[string]string{}
						}
						cs.RemoteGlobalCIDRs[r.Name] = r.GlobalCIDR.String()
					}
				}
				want[name] = cs.Remotes
				for _, r := range cs.Remotes {
					if !slices.Contains(cs.Readers, r) {
						st.Problems = append(st.Problems, fmt.Sprintf("%s connects to %s, but %s has no read-only user here: %s cannot read %s; hint: weft%s clustermesh connect %s %s",
							name, r, r, r, name, m.nameFlag(), name, r))
					}
				}
			}
		}
		if err != nil {
			cs.Error = err.Error()
			st.Problems = append(st.Problems, fmt.Sprintf("cluster %s: %v; hint: is its weft-apiserver running? (testenv: weft%s clustermesh enable %s starts it)", name, err, m.nameFlag(), name))
		}
		st.Clusters = append(st.Clusters, cs)
	}
	for _, ns := range m.nodeStatuses(cmd) {
		if ns.Error == "" {
			remotes, known := want[ns.Cluster]
			if !known {
				continue // a cluster not asked about
			}
			for _, r := range remotes {
				i := slices.IndexFunc(ns.Remotes, func(rc *agentapi.RemoteCluster) bool { return rc.Name == r })
				switch {
				case i < 0:
					st.Problems = append(st.Problems, fmt.Sprintf("node %s does not know remote %s yet; hint: the agent reads clustermesh/v1/remotes/ from its store", ns.Node, r))
				case !ns.Remotes[i].Connected || !ns.Remotes[i].Synced:
					st.Problems = append(st.Problems, fmt.Sprintf("node %s: remote %s connected=%v synced=%v: %s; hint: weft%s clustermesh status %s (is its apiserver up and reachable from the node?)",
						ns.Node, r, ns.Remotes[i].Connected, ns.Remotes[i].Synced, orDash(ns.Remotes[i].Error), m.nameFlag(), r))
				}
			}
		} else {
			st.Problems = append(st.Problems, fmt.Sprintf("node %s: %s", ns.Node, ns.Error))
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// nodeStatuses asks every node's agent of the testenv environment, or the
// agent chosen by --socket.
func (m *meshOptions) nodeStatuses(cmd *cobra.Command) []meshNodeStatus {
	ctx := cmd.Context()
	ask := func(client agentapi.AgentClient) (*agentapi.StatusResponse, error) {
		actx, cancel := context.WithTimeout(ctx, m.o.timeout)
		defer cancel()
		return client.Status(actx, &agentapi.StatusRequest{})
	}
	e, err := m.env(cmd)
	if m.kubeMode(cmd) && e == nil && !cmd.Flags().Changed("socket") {
		return nil
	}
	if err != nil || e == nil {
		var out []meshNodeStatus
		err := m.o.withAgent(ctx, func(ctx context.Context, t target, a agentapi.AgentClient) error {
			resp, err := ask(a)
			if err != nil {
				return err
			}
			out = append(out, meshNodeStatus{Node: resp.Node, Cluster: resp.Cluster, Remotes: resp.RemoteClusters})
			return nil
		})
		if err != nil {
			out = append(out, meshNodeStatus{Node: "(local agent)", Error: err.Error()})
		}
		return out
	}
	var out []meshNodeStatus
	for _, n := range e.Nodes {
		ns := meshNodeStatus{Node: n.Name, Cluster: n.Cluster}
		client, closeFn, err := e.Agent(ctx, n.Name)
		if err == nil {
			var resp *agentapi.StatusResponse
			resp, err = ask(client)
			closeFn()
			if err == nil {
				ns.Remotes = resp.RemoteClusters
			}
		}
		if err != nil {
			ns.Error = "ask the agent: " + err.Error()
		}
		out = append(out, ns)
	}
	return out
}

// The GLOBAL CIDR column and a remote's global CIDR after its name
// ("c2 (global 242.2.0.0/16)") appear only in a mesh with global
// addressing (docs/clustermesh.md).
func printMeshStatus(w io.Writer, st meshStatus) error {
	global := slices.ContainsFunc(st.Clusters, func(c meshClusterStatus) bool { return c.GlobalCIDR != "" || len(c.RemoteGlobalCIDRs) > 0 })
	cols := []string{"CLUSTER", "ID", "ROUTING", "POD CIDRS", "STORE", "REMOTES", "READERS", "ERROR"}
	if global {
		cols = slices.Insert(cols, 4, "GLOBAL CIDR")
	}
	t := newTable(cols...)
	for _, c := range st.Clusters {
		remotes := slices.Clone(c.Remotes)
		for i, r := range remotes {
			if g := c.RemoteGlobalCIDRs[r]; g != "" {
				remotes[i] = r + " (global " + g + ")"
			}
		}
		row := []string{c.Name, itoa(c.ID), orDash(c.Routing), orDash(strings.Join(c.PodCIDRs, ",")), orDash(strings.Join(c.Endpoints, ",")),
			orDash(strings.Join(remotes, ",")), orDash(strings.Join(c.Readers, ",")), orDash(c.Error)}
		if global {
			row = slices.Insert(row, 4, orDash(c.GlobalCIDR))
		}
		t.add(row...)
	}
	if err := t.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t = newTable("NODE", "CLUSTER", "REMOTE", "CONNECTED", "SYNCED", "NODES", "ENDPOINTS", "ERROR")
	for _, n := range st.Nodes {
		if n.Error != "" || len(n.Remotes) == 0 {
			t.add(n.Node, orDash(n.Cluster), "-", "-", "-", "-", "-", orDash(n.Error))
		}
		for _, r := range n.Remotes {
			t.add(n.Node, n.Cluster, r.Name, yesNo(r.Connected), yesNo(r.Synced), itoa(r.Nodes), itoa(r.Endpoints), orDash(r.Error))
		}
	}
	if err := t.write(w); err != nil {
		return err
	}
	for _, p := range st.Problems {
		fmt.Fprintln(w, "! "+p)
	}
	return nil
}
