package testenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Health is what Status found about one part of the environment.
type Health struct {
	Kind   string // store, kubernetes, agent, pod
	Name   string
	OK     bool
	Detail string
}

// Status checks every store, agent and pod: stores answer, agents run and
// answer Status, pods have their namespace and address.
func (e *Env) Status(ctx context.Context) []Health {
	var out []Health
	for _, c := range e.Clusters {
		h := Health{Kind: "store", Name: c.Name, Detail: e.KVStore + " " + strings.Join(c.StoreEndpoints, ",")}
		if len(c.HostStoreEndpoints) > 0 {
			h.Detail += " (host: " + strings.Join(c.HostStoreEndpoints, ",") + ")"
			if err := StoreReady(ctx, e.KVStore, c.HostStoreEndpoints[0]); err != nil {
				h.Detail += ": " + err.Error()
			} else {
				h.OK = true
			}
		}
		out = append(out, h)
	}
	for _, c := range e.Clusters {
		if c.Kubeconfig == "" {
			continue
		}
		h := Health{Kind: "kubernetes", Name: c.Name, Detail: "kubeconfig " + c.Kubeconfig}
		if pid := readPID(c.KubePIDFile); !alive(pid) {
			h.Detail = "kube-apiserver and kubelet not running (log " + c.KubeLog + ")"
		} else {
			h.OK = true
			h.Detail = fmt.Sprintf("pid %d, %s", pid, h.Detail)
		}
		out = append(out, h)
	}
	for _, n := range e.Nodes {
		h := Health{Kind: "agent", Name: n.Name}
		pid := e.AgentPID(n.Name)
		switch st, err := e.agentStatus(ctx, n); {
		case pid == 0:
			h.Detail = "not running (log " + n.Log + ")"
		case err != nil:
			h.Detail = fmt.Sprintf("pid %d, not answering: %v", pid, err)
		default:
			h.OK = true
			h.Detail = fmt.Sprintf("pid %d, %s, pod CIDR %s, %d endpoint(s), %d node(s)", pid, n.IP,
				strings.Join(st.PodCidrs, ","), st.Endpoints, st.Nodes)
		}
		out = append(out, h)
	}
	for _, p := range e.Pods {
		h := Health{Kind: "pod", Name: p.Name, Detail: "on " + p.Node}
		if _, err := os.Stat(NetNSPath(p.NetNS)); err != nil {
			h.Detail += ": namespace missing"
		} else if p.IP == "" {
			h.Detail += ": no address (ADD did not finish)"
		} else {
			h.OK = true
			h.Detail += ", " + p.IP
		}
		out = append(out, h)
	}
	return out
}

// PrintStatus writes the environment and the health of its parts as a
// table, and reports whether everything is healthy.
func (e *Env) PrintStatus(ctx context.Context, w io.Writer) bool {
	fmt.Fprintf(w, "Environment %q: %d cluster(s), %d node(s), %s routing, %s store, up since %s\n\n",
		e.Name, len(e.Clusters), len(e.Nodes), e.Routing, e.KVStore, e.Created.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tDETAIL")
	ok := true
	for _, h := range e.Status(ctx) {
		state := "ok"
		if !h.OK {
			state, ok = "FAIL", false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Kind, h.Name, state, h.Detail)
	}
	tw.Flush()
	return ok
}
