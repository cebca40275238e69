package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/weftnet/weft/api/agentapi"
)

// TestListTables checks the tables a user sees for every list command.
func TestListTables(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	serve(t, socket, testAgent("c1-n1"))

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"node list", []string{"node", "list"}, `
NAME    CLUSTER   IPV4          POD CIDRS       LOCAL
c1-n1   c1        192.168.7.2   10.100.1.0/24   *
c1-n2   c1        192.168.7.3   10.100.2.0/24
                                10.100.3.0/24
`},
		{"endpoint list", []string{"endpoint", "list"}, `
ID   POD              IPV4            IDENTITY   INGRESS POLICY   EGRESS POLICY   STATE   LABELS
7    default/web-1    10.100.1.5/32   65792      Enabled          Disabled        ready   k8s:app=web
                                                                                          k8s:io.kubernetes.pod.namespace=default
12   default/client   10.100.1.6/32   65793      Disabled         Disabled        ready   k8s:app=client
`},
		{"identity list", []string{"identity", "list"}, `
ID      REFS   LABELS
1       0      reserved:host
65792   1      k8s:app=web
               k8s:io.kubernetes.pod.namespace=default
`},
		{"ipcache list", []string{"ipcache", "list"}, `
PREFIX          IDENTITY   TUNNEL ENDPOINT   CLUSTER   POD
10.100.1.5/32   65792      -                 c1        default/web-1
10.100.2.7/32   65793      192.168.7.3       c1        default/client-2
0.0.0.0/0       2          -                 -         -
`},
		{"service list numbers backends", []string{"service", "list"}, `
ID   FRONTEND                SERVICE TYPE   SOURCE       BACKEND
1    10.96.0.10:80/TCP       ClusterIP      kubernetes   1 => 10.100.1.5:8080 (active)
                                                         2 => 10.100.2.7:8080 (not ready)
1    192.168.7.2:30080/TCP   NodePort       kubernetes   1 => 10.100.1.5:8080 (active)
                                                         2 => 10.100.2.7:8080 (not ready)
2    10.96.0.11:53/UDP       ClusterIP      cli
`},
		{"aliases", []string{"svc", "ls"}, `
ID   FRONTEND                SERVICE TYPE   SOURCE       BACKEND
1    10.96.0.10:80/TCP       ClusterIP      kubernetes   1 => 10.100.1.5:8080 (active)
                                                         2 => 10.100.2.7:8080 (not ready)
1    192.168.7.2:30080/TCP   NodePort       kubernetes   1 => 10.100.1.5:8080 (active)
                                                         2 => 10.100.2.7:8080 (not ready)
2    10.96.0.11:53/UDP       ClusterIP      cli
`},
		{"bpf tunnel list", []string{"bpf", "tunnel", "list"}, `
PREFIX          TUNNEL ENDPOINT
10.100.2.0/24   192.168.7.3
`},
		{"bpf ipcache list", []string{"bpf", "ipcache", "list"}, `
PREFIX          IDENTITY   TUNNEL ENDPOINT
10.100.2.7/32   65793      192.168.7.3
`},
		{"bpf endpoints list", []string{"bpf", "endpoints", "list"}, `
IP           IFINDEX   ENDPOINT
10.100.1.5   12        7
`},
		{"bpf lb list", []string{"bpf", "lb", "list"}, `
SERVICE             SLOT   BACKEND
10.96.0.10:80/TCP   1      10.100.1.5:8080
`},
		{"bpf policy list", []string{"bpf", "policy", "list"}, `
ENDPOINT   IDENTITY   VERDICT
7          65793      allow
`},
		{"bpf ct list", []string{"bpf", "ct", "list"}, `
SRC               DST             STATE
10.100.1.6:4242   10.100.1.5:80   established
`},
		{"bpf metrics list pads short rows", []string{"bpf", "metrics", "list"}, `
REASON      PACKETS
forwarded   1520
short-row
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if r.err != nil {
				t.Fatalf("weft %s: %v", strings.Join(tc.args, " "), r.err)
			}
			if want := strings.TrimPrefix(tc.want, "\n"); r.stdout != want {
				t.Errorf("weft %s printed\n%s\nwant\n%s", strings.Join(tc.args, " "), r.stdout, want)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %q, want nothing", r.stderr)
			}
		})
	}
}

// TestEmptyLists checks that an agent with nothing to show prints only the
// headers (and nothing at all for a BPF dump without columns).
func TestEmptyLists(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	serve(t, socket, &fakeAgent{tables: map[string]*agentapi.Table{"ct": {}}})

	tests := []struct {
		args []string
		want string
	}{
		{[]string{"node", "list"}, "NAME   CLUSTER   IPV4   POD CIDRS   LOCAL\n"},
		{[]string{"endpoint", "list"}, "ID   POD   IPV4   IDENTITY   INGRESS POLICY   EGRESS POLICY   STATE   LABELS\n"},
		{[]string{"identity", "list"}, "ID   REFS   LABELS\n"},
		{[]string{"ipcache", "list"}, "PREFIX   IDENTITY   TUNNEL ENDPOINT   CLUSTER   POD\n"},
		{[]string{"service", "list"}, "ID   FRONTEND   SERVICE TYPE   SOURCE   BACKEND\n"},
		{[]string{"bpf", "ct", "list"}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.stdout != tc.want {
				t.Errorf("printed %q, want %q", r.stdout, tc.want)
			}
		})
	}
}
