package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

// TestStatusHealthy checks the summary of a healthy node and that --verbose
// asks the agent for details and shows them.
func TestStatusHealthy(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	// A remote's own fault (records it may not announce) is a warning on
	// its line: the node stays healthy.
	fa.status.RemoteClusters = []*agentapi.RemoteCluster{{Name: "c2", Connected: true, Synced: true, Nodes: 2, Endpoints: 4},
		{Name: "c3", Connected: true, Synced: true, Nodes: 1, Error: "rejected 2 records outside its prefix or identity range"}}
	fa.status.Collection = &agentapi.Collection{By: "agent c1-n2", Time: "2026-11-21T09:59:30Z", FreedTime: "2026-11-21T09:40:00Z",
		FreedIdentities: []uint32{65800}, FreedCidrs: []string{"c1-n3 10.100.3.0/24"}}
	fa.status.Flows = &agentapi.FlowStatus{Enabled: true, NumFlows: 37, MaxFlows: 4095, FlowsPerSecond: 2.5}
	serve(t, socket, fa)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"summary", []string{"status"}, `
Node:             c1-n1 (cluster c1, id 1)
Agent:            v0.1.0, up 5m3s
Store:            OK  etcd, quorum, synced, heartbeat 3s ago
Routing:          tunnel (VXLAN, UDP 8472)
Node IPv4:        192.168.7.2
Pod CIDRs:        10.100.1.0/24 (2/253 allocated)
Datapath:         OK  tcx
Endpoints:        2
Identities:       9
Nodes:            2
IPCache:          5 entries
Services:         1
Flows:            37/4095, 2.5 flows/s
Node health:      2/2 reachable
                  c1-n1  192.168.7.2  reachable  0.05 ms
                  c1-n2  192.168.7.3  reachable  0.31 ms
Remote clusters:  2/2 connected
                  c2  connected, synced  2 nodes, 4 endpoints
                  c3  connected, synced  1 nodes, 0 endpoints  WARN  rejected 2 records outside its prefix or identity range
Collection:       by agent c1-n2, 30s ago; last freed identity 65800 and pod CIDRs of dead nodes (c1-n3 10.100.3.0/24), 20m0s ago
Components:       OK  no component logged an error
`},
		{"verbose", []string{"status", "--verbose"}, `
Node:             c1-n1 (cluster c1, id 1)
Agent:            v0.1.0, up 5m3s
Store:            OK  etcd, quorum, synced, heartbeat 3s ago (2026-11-21T09:59:57Z)
Store endpoints:  http://192.168.7.1:2379
Routing:          tunnel (VXLAN, UDP 8472)
Node IPv4:        192.168.7.2
Pod CIDRs:        10.100.1.0/24 (2/253 allocated)
Datapath:         OK  tcx
BPF root:         /sys/fs/bpf/weft/c1-n1
Counters:         forwarded      1520
                  policy-denied  3
Endpoints:        2
Identities:       9
Nodes:            2
IPCache:          5 entries
Services:         1
Flows:            37/4095, 2.5 flows/s
Node health:      2/2 reachable
                  c1-n1  192.168.7.2  reachable  0.05 ms
                  c1-n2  192.168.7.3  reachable  0.31 ms
Remote clusters:  2/2 connected
                  c2  connected, synced  2 nodes, 4 endpoints
                  c3  connected, synced  1 nodes, 0 endpoints  WARN  rejected 2 records outside its prefix or identity range
Collection:       by agent c1-n2, 30s ago; last freed identity 65800 and pod CIDRs of dead nodes (c1-n3 10.100.3.0/24), 20m0s ago
Components:       OK  no component logged an error
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("weft status on a healthy node: %v", r.err)
			}
			if want := strings.TrimPrefix(tc.want, "\n"); r.stdout != want {
				t.Errorf("printed\n%s\nwant\n%s", r.stdout, want)
			}
			verbose := tc.name == "verbose"
			if got := fa.statusRequest().GetVerbose(); got != verbose {
				t.Errorf("asked the agent with verbose=%v, want %v", got, verbose)
			}
		})
	}
}

// TestStatusComponentErrors: the last error each component logged is a
// WARN block; the node stays healthy (the component may have recovered).
func TestStatusComponentErrors(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	fa.status.ComponentErrors = []*agentapi.ComponentError{
		{Component: "policy", Message: "apply policy: map full", Time: "2026-11-21T09:59:48Z", Count: 3},
		{Component: "services", Message: "program service frontend: no backend slot", Time: "2026-11-21T09:50:00Z", Count: 1},
	}
	serve(t, socket, fa)
	r := runCLI(t, dir, nil, "--socket", socket, "status")
	if r.err != nil {
		t.Fatalf("weft status with component errors: %v (a component's error is a warning)", r.err)
	}
	for _, want := range []string{
		"Components:   WARN  2 component(s) logged errors (see the agent's log)\n",
		"              policy: apply policy: map full (3×, last 12s ago)\n",
		"              services: program service frontend: no backend slot (1×, last 10m0s ago)\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("weft status lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestStatusUnhealthy checks that each problem fails the command with a
// message saying what to check, after printing the summary.
func TestStatusUnhealthy(t *testing.T) {
	tests := []struct {
		name     string
		break_   func(st *agentapi.StatusResponse)
		wantErr  string
		wantLine string // a line of the summary showing the problem
	}{
		{
			name:     "store error",
			break_:   func(st *agentapi.StatusResponse) { st.Store.Error = "context deadline exceeded" },
			wantErr:  "weft-agent on node c1-n1 is unhealthy: store etcd: context deadline exceeded (check that the store at http://192.168.7.1:2379 is up and reachable from the node)",
			wantLine: "Store:        FAIL  etcd: context deadline exceeded",
		},
		{
			name:     "no quorum",
			break_:   func(st *agentapi.StatusResponse) { st.Store.Quorum = false },
			wantErr:  "weft-agent on node c1-n1 is unhealthy: store etcd: no quorum (check that a majority of the members http://192.168.7.1:2379 are up)",
			wantLine: "Store:        FAIL  etcd, no quorum, synced, heartbeat 3s ago",
		},
		{
			name:     "datapath error",
			break_:   func(st *agentapi.StatusResponse) { st.Datapath.Error = "attach tcx to lxc1: no such device" },
			wantErr:  "weft-agent on node c1-n1 is unhealthy: datapath: attach tcx to lxc1: no such device (check the agent's log and the BPF filesystem at /sys/fs/bpf/weft/c1-n1)",
			wantLine: "Datapath:     FAIL  attach tcx to lxc1: no such device",
		},
		{
			name: "node unreachable",
			break_: func(st *agentapi.StatusResponse) {
				st.Health[1] = &agentapi.NodeHealth{Node: "c1-n2", Cluster: "c1", Ip: "192.168.7.3", Error: "connection refused"}
			},
			wantErr:  "weft-agent on node c1-n1 is unhealthy: 1 of 2 nodes unreachable: c1-n2 (192.168.7.3): connection refused (check that their agents run and answer GET /healthz on port 4240 over the underlay)",
			wantLine: "              c1-n2  192.168.7.3  unreachable  connection refused",
		},
		{
			name: "remote cluster down and store error",
			break_: func(st *agentapi.StatusResponse) {
				st.Store.Error = "lease expired"
				st.RemoteClusters = []*agentapi.RemoteCluster{{Name: "c2", Error: "x509: certificate signed by unknown authority"}}
			},
			// The remote's fault is a warning on its line, not in the error.
			wantErr:  "weft-agent on node c1-n1 is unhealthy: store etcd: lease expired (check that the store at http://192.168.7.1:2379 is up and reachable from the node)",
			wantLine: "                  c2  not connected, not synced  0 nodes, 0 endpoints  WARN  x509: certificate signed by unknown authority",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := shortTempDir(t)
			socket := filepath.Join(dir, "agent.sock")
			fa := testAgent("c1-n1")
			tc.break_(fa.status)
			serve(t, socket, fa)

			r := runCLI(t, dir, nil, "--socket", socket, "status")
			if r.err == nil || r.err.Error() != tc.wantErr {
				t.Errorf("error\n%v\nwant\n%s", r.err, tc.wantErr)
			}
			if !strings.Contains(r.stdout, "\n"+tc.wantLine+"\n") {
				t.Errorf("summary lacks line %q:\n%s", tc.wantLine, r.stdout)
			}
		})
	}
}

func TestFlowsLine(t *testing.T) {
	for _, tc := range []struct {
		fl   *agentapi.FlowStatus
		want string
	}{
		{&agentapi.FlowStatus{}, "disabled (--flows=false)"},
		{&agentapi.FlowStatus{Enabled: true, NumFlows: 4095, MaxFlows: 4095, FlowsPerSecond: 812.25, LostFlows: 17}, "4095/4095, 812.2 flows/s, 17 lost by slow readers"},
	} {
		if got := flowsLine(tc.fl); got != tc.want {
			t.Errorf("flowsLine(%v) = %q, want %q", tc.fl, got, tc.want)
		}
	}
}
