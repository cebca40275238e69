package cli

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weftnet/weft/api/agentapi"
)

// statusView is the human form of `weft status`.
type statusView struct {
	st      *agentapi.StatusResponse
	verbose bool
	now     time.Time
}

func (v statusView) write(w io.Writer) error {
	st := v.st
	var f fields
	f.add("Node", fmt.Sprintf("%s (cluster %s, id %d)", orDash(st.GetNode()), orDash(st.GetCluster()), st.GetClusterId()))
	agent := orDash(st.GetVersion())
	if st.GetUptime() != "" {
		agent += ", up " + st.GetUptime()
	}
	f.add("Agent", agent)
	f.add("Store", v.store())
	if st.GetKubernetes() != nil {
		f.add("Kubernetes", v.kubernetes())
	}
	if v.verbose {
		f.add("Store endpoints", orDash(strings.Join(st.GetStore().GetEndpoints(), "\n")))
	}
	f.add("Routing", routingMode(st.GetRoutingMode()))
	f.add("Node IPv4", orDash(st.GetNodeIpv4()))
	f.add("Pod CIDRs", podCIDRsLine(st))
	if m := st.GetMasquerading(); m != "" {
		if len(st.GetNonMasquerade()) > 0 {
			m += " (not to " + strings.Join(st.GetNonMasquerade(), ", ") + " and the cluster's endpoints and nodes)"
		}
		f.add("Masquerading", m)
	}
	f.add("Datapath", v.datapath())
	if v.verbose {
		f.add("BPF root", orDash(st.GetDatapath().GetBpfRoot()))
		f.add("Counters", v.counters())
	}
	f.add("Endpoints", itoa(st.GetEndpoints()))
	f.add("Identities", itoa(st.GetIdentities()))
	f.add("Nodes", itoa(st.GetNodes()))
	f.add("IPCache", itoa(st.GetIpcacheEntries())+" entries")
	services := itoa(st.GetServices())
	if g := st.GetGlobalServiceCount(); g > 0 {
		services += fmt.Sprintf(" (%d global)", g)
	}
	f.add("Services", services)
	if fl := st.GetFlows(); fl != nil {
		f.add("Flows", flowsLine(fl))
	}
	f.add("Node health", v.health())
	if len(st.GetRemoteClusters()) > 0 {
		f.add("Remote clusters", v.remotes())
		if g := st.GetGlobalServices(); g != "" {
			if strings.Contains(g, "not synced") || strings.HasPrefix(g, "waiting") {
				g = "WARN  " + g
			}
			f.add("Global svcs", g)
		}
	}
	f.add("Collection", v.collection())
	f.add("Components", v.components())
	return f.write(w)
}

// components is the last error each agent component logged, a WARN: a
// reconciler that failed once may have recovered since (its log says).
func (v statusView) components() string {
	errs := v.st.GetComponentErrors()
	if len(errs) == 0 {
		return "OK  no component logged an error"
	}
	lines := []string{fmt.Sprintf("WARN  %d component(s) logged errors (see the agent's log)", len(errs))}
	for _, e := range errs {
		lines = append(lines, fmt.Sprintf("%s: %s (%d×, last %s)", e.GetComponent(), e.GetMessage(), e.GetCount(), v.ago(e.GetTime())))
	}
	return strings.Join(lines, "\n")
}

// collection is the cluster's last garbage collection: who ran it, when,
// and what the last pass that freed something freed.
func (v statusView) collection() string {
	c := v.st.GetCollection()
	if c == nil {
		return "none yet (run by weft-apiserver or one agent of the cluster)"
	}
	out := fmt.Sprintf("by %s, %s", c.GetBy(), v.ago(c.GetTime()))
	if c.GetError() != "" {
		out += ", WARN " + c.GetError()
	}
	if c.GetFreedTime() == "" {
		return out + "; nothing freed yet"
	}
	var what []string
	if ids := c.GetFreedIdentities(); len(ids) == 1 {
		what = append(what, fmt.Sprintf("identity %d", ids[0]))
	} else if len(ids) > 1 {
		what = append(what, fmt.Sprintf("%d identities %v", len(ids), ids))
	}
	if cidrs := c.GetFreedCidrs(); len(cidrs) > 0 {
		what = append(what, fmt.Sprintf("pod CIDRs of dead nodes (%s)", strings.Join(cidrs, ", ")))
	}
	return out + "; last freed " + strings.Join(what, " and ") + ", " + v.ago(c.GetFreedTime())
}

// ago says how long before now an RFC 3339 time was.
func (v statusView) ago(ts string) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "at " + orDash(ts)
	}
	return fmt.Sprintf("%v ago", v.now.Sub(t).Round(time.Second))
}

// kubernetes is the cluster's Kubernetes source as it last reported to the
// store: who mirrors, which kinds are synced, how many objects, and the
// objects it could not mirror (a WARN: the cluster's, not this node's).
func (v statusView) kubernetes() string {
	k := v.st.GetKubernetes()
	synced, objects := 0, uint32(0)
	var pending []string
	for _, kind := range slices.Sorted(maps.Keys(k.GetKinds())) {
		kk := k.GetKinds()[kind]
		objects += kk.GetObjects()
		if kk.GetSynced() {
			synced++
		} else {
			pending = append(pending, strings.TrimPrefix(kind, "k8s-"))
		}
	}
	out := fmt.Sprintf("mirrored by %s, %d/%d kinds synced, %d objects, reported %s", orDash(k.GetHolder()), synced, len(k.GetKinds()), objects, v.ago(k.GetTime()))
	var warn []string
	if len(pending) > 0 {
		warn = append(warn, "not synced yet: "+strings.Join(pending, ", "))
	}
	if n := k.GetProblemCount(); n > 0 {
		p := fmt.Sprintf("%d objects not mirrored", n)
		if len(k.GetProblems()) > 0 {
			p += " (" + k.GetProblems()[0]
			if n > 1 {
				p += ", …"
			}
			p += ")"
		}
		warn = append(warn, p)
	}
	if k.GetLastError() != "" {
		warn = append(warn, "last error "+v.ago(k.GetLastErrorTime())+": "+k.GetLastError())
	}
	if len(warn) > 0 {
		return "WARN  " + out + "; " + strings.Join(warn, "; ")
	}
	return "OK  " + out
}

func (v statusView) store() string {
	s := v.st.GetStore()
	if s.GetError() != "" {
		return fmt.Sprintf("FAIL  %s: %s", orDash(s.GetBackend()), s.GetError())
	}
	if s.GetBackend() == "" {
		return "unknown: the agent reported no store"
	}
	parts := []string{s.GetBackend()}
	state := "OK"
	if s.GetQuorum() {
		parts = append(parts, "quorum")
	} else {
		state = "FAIL"
		parts = append(parts, "no quorum")
	}
	if s.GetSynced() {
		parts = append(parts, "synced")
	} else {
		parts = append(parts, "not synced yet")
	}
	parts = append(parts, v.heartbeat(s.GetHeartbeat()))
	return state + "  " + strings.Join(parts, ", ")
}

func (v statusView) heartbeat(hb string) string {
	if hb == "" {
		return "no heartbeat yet"
	}
	t, err := time.Parse(time.RFC3339Nano, hb)
	if err != nil {
		return "heartbeat " + hb
	}
	s := "heartbeat " + v.now.Sub(t).Round(time.Second).String() + " ago"
	if v.verbose {
		s += " (" + hb + ")"
	}
	return s
}

func routingMode(m string) string {
	switch m {
	case "tunnel":
		return "tunnel (VXLAN, UDP 8472)"
	case "native":
		return "native (direct routes between nodes)"
	}
	return orDash(m)
}

func (v statusView) datapath() string {
	dp := v.st.GetDatapath()
	if dp.GetError() != "" {
		return "FAIL  " + dp.GetError()
	}
	if dp.GetAttachMode() == "" {
		return "unknown: the agent reported no attach mode"
	}
	return "OK  " + dp.GetAttachMode()
}

func (v statusView) counters() string {
	c := v.st.GetDatapath().GetCounters()
	var rows [][]string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		rows = append(rows, []string{k, itoa(c[k])})
	}
	return orDash(aligned(rows))
}

func (v statusView) health() string {
	hs := v.st.GetHealth()
	if len(hs) == 0 {
		return "no nodes probed yet"
	}
	up := 0
	rows := make([][]string, 0, len(hs))
	for _, h := range hs {
		name := h.GetNode()
		if h.GetCluster() != "" && h.GetCluster() != v.st.GetCluster() {
			name = h.GetCluster() + "/" + name
		}
		if h.GetReachable() {
			up++
			rows = append(rows, []string{name, h.GetIp(), "reachable", fmt.Sprintf("%.2f ms", h.GetLatencyMs())})
		} else {
			rows = append(rows, []string{name, h.GetIp(), "unreachable", h.GetError()})
		}
	}
	return fmt.Sprintf("%d/%d reachable\n%s", up, len(hs), aligned(rows))
}

func (v statusView) remotes() string {
	rcs := v.st.GetRemoteClusters()
	connected := 0
	rows := make([][]string, 0, len(rcs))
	for _, rc := range rcs {
		state := "not connected"
		if rc.GetConnected() {
			connected++
			state = "connected"
		}
		if rc.GetSynced() {
			state += ", synced"
		} else {
			state += ", not synced"
		}
		row := []string{rc.GetName(), state, fmt.Sprintf("%d nodes, %d endpoints", rc.GetNodes(), rc.GetEndpoints())}
		// The remote's faults are warnings on its line, not the node's health.
		switch {
		case rc.GetError() != "":
			row = append(row, "WARN  "+rc.GetError())
		case !rc.GetConnected():
			row = append(row, "WARN  not connected (check its weft-apiserver and the clustermesh connection)")
		}
		rows = append(rows, row)
	}
	return fmt.Sprintf("%d/%d connected\n%s", connected, len(rcs), aligned(rows))
}

// aligned lays rows out in columns separated by two spaces, one line each.
func aligned(rows [][]string) string {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	_ = tw.Flush() // writes to memory
	var lines []string
	for line := range strings.Lines(buf.String()) {
		lines = append(lines, strings.TrimRight(line, " \n"))
	}
	return strings.Join(lines, "\n")
}

// flowsLine is the ring of recent flows as cilium status shows Hubble's:
// held/capacity and the rate, and what slow readers lost.
func flowsLine(fl *agentapi.FlowStatus) string {
	if !fl.GetEnabled() {
		return "disabled (--flows=false)"
	}
	out := fmt.Sprintf("%d/%d, %.1f flows/s", fl.GetNumFlows(), fl.GetMaxFlows(), fl.GetFlowsPerSecond())
	if fl.GetLostFlows() > 0 {
		out += fmt.Sprintf(", %d lost by slow readers", fl.GetLostFlows())
	}
	return out
}

// podCIDRsLine is the node's pod CIDRs with how many of their addresses
// endpoints hold (the network address, the node's .1 and the broadcast
// address are not handed out).
func podCIDRsLine(st *agentapi.StatusResponse) string {
	cidrs := st.GetPodCidrs()
	if len(cidrs) == 0 {
		return "-"
	}
	usable := 0
	for _, c := range cidrs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Addr().Is4() && p.Bits() <= 30 {
			usable += 1<<(32-p.Bits()) - 3
		}
	}
	out := strings.Join(cidrs, ", ")
	if usable > 0 {
		out += fmt.Sprintf(" (%d/%d allocated)", st.GetEndpoints(), usable)
	}
	return out
}
