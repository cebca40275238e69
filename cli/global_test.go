package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
)

// TestGlobalAddressesShown: with global addressing, `weft ipcache list`
// gains a GLOBAL ADDRESS column (local and remote pods sharing a pod CIDR
// tell apart by it), and `weft endpoint list/get` show the pod's global
// address next to its address.
func TestGlobalAddressesShown(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	a := testAgent("c1-n1")
	a.ipcache = &agentapi.ListIPCacheResponse{Entries: []*agentapi.IPCacheEntry{
		{Prefix: "10.100.0.5/32", Identity: 65792, Namespace: "default", Pod: "web-1", Cluster: "c1", GlobalIp: "242.1.0.5"},
		{Prefix: "0.0.0.0/0", Identity: 2},
		{Prefix: "10.100.0.5/32", Identity: 131328, HostIp: "192.168.0.21", Namespace: "default", Pod: "web-2", Cluster: "c2", GlobalIp: "242.2.0.5"},
	}}
	a.endpoints.Endpoints[0].GlobalIpv4 = "242.1.1.5"
	serve(t, socket, a)
	for _, tc := range []struct {
		args []string
		want []string // lines or parts of lines printed
	}{
		{[]string{"ipcache", "list"}, []string{
			"PREFIX          IDENTITY   TUNNEL ENDPOINT   CLUSTER   POD             GLOBAL ADDRESS\n",
			"10.100.0.5/32   65792      -                 c1        default/web-1   242.1.0.5\n",
			"0.0.0.0/0       2          -                 -         -               -\n",
			"10.100.0.5/32   131328     192.168.0.21      c2        default/web-2   242.2.0.5\n"}},
		{[]string{"endpoint", "list"}, []string{"10.100.1.5/32 (global 242.1.1.5)", "10.100.1.6/32   "}},
		{[]string{"endpoint", "get", "7"}, []string{"Global IPv4:", "242.1.1.5"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("weft %s printed\n%s\nwant it to contain %q", strings.Join(tc.args, " "), r.stdout, w)
				}
			}
		})
	}
}

// TestMeshStatusShowsGlobalCIDRs: `weft clustermesh status` of two
// clusters that share a pod CIDR and have global addressing shows each
// cluster's global CIDR and, after each remote's name, the remote's; a
// mesh without global addressing prints no such column
// (TestClusterMeshCommands).
func TestMeshStatusShowsGlobalCIDRs(t *testing.T) {
	root := shortTempDir(t)
	for i, g := range []string{"242.1.0.0/16", "242.2.0.0/16"} {
		apiservertest.Start(t, fmt.Sprintf("c%d", i+1), uint32(i+1), apiservertest.Options{Root: root, PodCIDR: "10.100.0.0/16",
			Modify: func(c *apiserver.Config) { c.GlobalCIDR = g }})
	}
	socket := filepath.Join(root, "agent.sock")
	agent := testAgent("n1")
	agent.status.Cluster = "c1"
	agent.status.RemoteClusters = []*agentapi.RemoteCluster{{Name: "c2", Connected: true, Synced: true}}
	serve(t, socket, agent)
	mesh := func(args ...string) result {
		return runCLI(t, t.TempDir(), nil, append([]string{"--socket", socket, "clustermesh", "--dir", root}, args...)...)
	}
	if r := mesh("connect", "c1", "c2"); r.err != nil {
		t.Fatalf("connect c1 c2: %v\n%s", r.err, r.stdout)
	}
	r := mesh("status", "c1", "c2")
	if r.err != nil {
		t.Fatalf("status: %v\n%s", r.err, r.stdout)
	}
	for _, want := range []string{"POD CIDRS       GLOBAL CIDR    STORE", "10.100.0.0/16   242.1.0.0/16", "10.100.0.0/16   242.2.0.0/16",
		"c2 (global 242.2.0.0/16)", "c1 (global 242.1.0.0/16)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mesh("status", "c1", "-o", "json")
	for _, want := range []string{`"global_cidr": "242.1.0.0/16"`, `"remote_global_cidrs": {`, `"c2": "242.2.0.0/16"`} {
		if r.err != nil || !strings.Contains(r.stdout, want) {
			t.Errorf("status -o json (%v) lacks %q:\n%s", r.err, want, r.stdout)
		}
	}
}

// TestObserveShowsGlobalAddress: a flow of a pod whose packets crossed
// the mesh under its global address names that address next to the pod
// in every text format; the other end, a remote pod known by its global
// address, is printed as before.
func TestObserveShowsGlobalAddress(t *testing.T) {
	socket := serveObserver(t, []*agentapi.Flow{{TimeNs: testNow.Add(-time.Minute).UnixNano(),
		Source: &agentapi.FlowEndpoint{Ip: "242.2.0.7", Port: 40000, Identity: 2<<16 | 300, Namespace: "dev", PodName: "client-c2", Cluster: "c2"},
		Destination: &agentapi.FlowEndpoint{Ip: "10.100.1.5", Port: 80, Identity: 65836, Namespace: "dev", PodName: "web-c1", Cluster: "c1",
			GlobalIp: "242.1.1.5"},
		Node: "c1-n1", Cluster: "c1", ObservationPoint: "to-endpoint", Verdict: agentapi.Verdict_FORWARDED, Protocol: "TCP", ProtocolNumber: 6,
		Direction: agentapi.Direction_INGRESS}})
	for _, tc := range []struct{ format, want string }{
		{"compact", "dev/client-c2:40000 -> dev/web-c1:80 (global 242.1.1.5) to-endpoint FORWARDED"},
		{"dict", "dev/web-c1:80 (global 242.1.1.5) (identity 65836) 10.100.1.5"},
		{"json", `"global_ip":"242.1.1.5"`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			r := runCLI(t, t.TempDir(), nil, "--socket", socket, "observe", "-o", tc.format)
			if r.err != nil || !strings.Contains(r.stdout, tc.want) {
				t.Errorf("weft observe -o %s (%v) printed\n%s\nwant it to contain %q", tc.format, r.err, r.stdout, tc.want)
			}
		})
	}
}
