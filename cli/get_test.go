package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
)

// TestEndpointGetQuery checks that each way of naming an endpoint asks the
// agent for it by the right field, and finds it.
func TestEndpointGetQuery(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	fa := testAgent("c1-n1")
	serve(t, socket, fa)

	tests := []struct {
		arg  string
		want *agentapi.GetEndpointRequest
	}{
		{"7", &agentapi.GetEndpointRequest{Id: 7}},
		{"4f2a9c", &agentapi.GetEndpointRequest{ContainerId: "4f2a9c"}},
		{"10.100.1.5", &agentapi.GetEndpointRequest{Ip: "10.100.1.5"}},
		{"10.100.1.5/32", &agentapi.GetEndpointRequest{Ip: "10.100.1.5"}},
		{"default/web-1", &agentapi.GetEndpointRequest{Pod: "default/web-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.arg, func(t *testing.T) {
			r := runCLI(t, dir, nil, "--socket", socket, "endpoint", "get", tc.arg)
			if r.err != nil {
				t.Fatalf("weft endpoint get %s: %v", tc.arg, r.err)
			}
			fa.mu.Lock()
			got := fa.lastGetByEP
			fa.mu.Unlock()
			if !proto.Equal(got, tc.want) {
				t.Errorf("asked the agent for %v, want %v", got, tc.want)
			}
			if !strings.Contains(r.stdout, "Pod:        default/web-1\n") {
				t.Errorf("output does not show pod default/web-1:\n%s", r.stdout)
			}
		})
	}
}

// TestGetOutput checks the detail views and the errors of the get commands.
func TestGetOutput(t *testing.T) {
	dir := shortTempDir(t)
	socket := filepath.Join(dir, "agent.sock")
	serve(t, socket, testAgent("c1-n1"))

	tests := []struct {
		name    string
		args    []string
		want    string // whole stdout
		wantErr string
	}{
		{name: "endpoint with policy", args: []string{"endpoint", "get", "7"}, want: `
ID:         7
Pod:        default/web-1
Container:  4f2a9c
Node:       c1-n1
State:      ready
Interface:  eth0 (host side lxc1a2b3c4d)
Netns:      /var/run/netns/weft-e2e-pod-web-1
IPv4:       10.100.1.5/32
Gateway:    10.100.1.1 (MAC 0a:00:00:00:00:01)
MTU:        1450
Routes:     10.100.1.1/32 on-link
            0.0.0.0/0 via 10.100.1.1
Identity:   65792
Labels:     k8s:app=web
            k8s:io.kubernetes.pod.namespace=default
Policy:     ingress enforced, egress not enforced; 2 rules

DIRECTION   VERDICT   IDENTITY   PORT        PROTOCOL   LABELS
ingress     allow     65793      80          TCP        k8s:app=client
ingress     deny      2          8000-8080   TCP        reserved:world
`},
		{name: "endpoint without policy", args: []string{"endpoint", "get", "default/client"}, want: `
ID:         12
Pod:        default/client
Container:  9b77e0
Node:       c1-n1
State:      ready
Interface:  - (host side -)
Netns:      -
IPv4:       10.100.1.6/32
Gateway:    - (MAC -)
MTU:        0
Routes:     -
Identity:   65793
Labels:     k8s:app=client
Policy:     none: no policy selects this endpoint, all traffic is allowed
`},
		{name: "identity", args: []string{"identity", "get", "65792"}, want: `
ID:        65792
Reserved:  no
Refs:      1
Labels:    k8s:app=web
           k8s:io.kubernetes.pod.namespace=default
`},
		{name: "endpoint not found", args: []string{"endpoint", "get", "default/nope"},
			wantErr: `get endpoint "default/nope": no such endpoint on the agent at ` + socket + `; see weft endpoint list`},
		{name: "endpoint bad pod", args: []string{"endpoint", "get", "default/a/b"},
			wantErr: `parse pod "default/a/b": want namespace/name such as default/web-1`},
		{name: "endpoint no argument", args: []string{"endpoint", "get"},
			wantErr: `accepts 1 arg(s), received 0`},
		{name: "identity not found", args: []string{"identity", "get", "4242"},
			wantErr: `get identity 4242: no such identity on the agent at ` + socket + `; see weft identity list`},
		{name: "identity not a number", args: []string{"identity", "get", "web"},
			wantErr: `parse identity "web": want a number such as 1 (host) or 65792`},
		{name: "identity too large", args: []string{"identity", "get", "4294967296"},
			wantErr: `parse identity "4294967296": want a number such as 1 (host) or 65792`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, dir, nil, append([]string{"--socket", socket}, tc.args...)...)
			if tc.wantErr != "" {
				if r.err == nil || r.err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", r.err, tc.wantErr)
				}
				if r.stdout != "" {
					t.Errorf("printed %q on error, want nothing", r.stdout)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("weft %s: %v", strings.Join(tc.args, " "), r.err)
			}
			if tc.want != "" && r.stdout != strings.TrimPrefix(tc.want, "\n") {
				t.Errorf("printed\n%s\nwant\n%s", r.stdout, strings.TrimPrefix(tc.want, "\n"))
			}
		})
	}
}
