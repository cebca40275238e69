package cni

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// A failure after the veth exists leaves nothing behind: no veth on the
// node, no interface or address in the pod, no endpoint at the agent.
func TestAddFailureLeavesNothing(t *testing.T) {
	for _, tc := range []struct {
		name       string
		setup      func(s *standIn)
		deadAgent  bool // the socket is there but nothing answers
		code       uint
		want       string
		wantDelete bool
	}{
		{name: "agent has no address left",
			setup: func(s *standIn) {
				s.createErr = status.Error(codes.ResourceExhausted, "pod CIDR 10.100.7.0/24 is full")
			},
			code: types.ErrTryAgainLater, want: "pod CIDR 10.100.7.0/24 is full", wantDelete: true},
		{name: "agent rejects the request",
			setup: func(s *standIn) { s.createErr = status.Error(codes.InvalidArgument, "label app: value too long") },
			code:  types.ErrInvalidNetworkConfig, want: "label app: value too long", wantDelete: true},
		{name: "agent answers a bad gateway MAC",
			setup: func(s *standIn) { s.answer = func(ep *agentapi.Endpoint) { ep.GatewayMac = "zz:zz" } },
			code:  types.ErrInternal, want: `gateway_mac "zz:zz" is not an Ethernet MAC address`, wantDelete: true},
		{name: "agent answers a bad address",
			setup: func(s *standIn) { s.answer = func(ep *agentapi.Endpoint) { ep.Ipv4 = "10.100.7.300/32" } },
			code:  types.ErrInternal, want: `ipv4 "10.100.7.300/32"`, wantDelete: true},
		{name: "route via an unreachable gateway fails in the pod",
			setup: func(s *standIn) {
				s.answer = func(ep *agentapi.Endpoint) {
					ep.Routes = append(ep.Routes, &agentapi.Route{Dst: "192.168.50.0/24", Gw: "172.31.0.1"})
				}
			},
			code: types.ErrInternal, want: "add route 192.168.50.0/24 via 172.31.0.1 on eth0", wantDelete: true},
		{name: "agent socket does not answer",
			deadAgent: true,
			code:      types.ErrTryAgainLater, want: "cleanup failed too"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostNS, podNS := newNS(t), newNS(t)
			agent := startStandIn(t)
			socket := agent.socket
			if tc.setup != nil {
				agent.set(tc.setup)
			}
			if tc.deadAgent {
				socket = filepath.Join(t.TempDir(), "agent.sock")
				if err := os.WriteFile(socket, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cid := randomID(t)
			args := cmdArgs(netConf(t, socket, nil), podNS, cid, "eth0", "")
			_, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) })
			wantCode(t, err, tc.code, tc.want)
			assertNothingLeft(t, hostNS, podNS, agent)
			if got := agent.called("DeleteEndpoint " + cid + "/eth0"); tc.wantDelete && got != 1 {
				t.Errorf("DeleteEndpoint called %d times after the failed ADD, want 1", got)
			}
		})
	}
}

// Configuration, arguments and namespace are checked before anything is
// created; every mistake is a CNI error with the spec's code.
func TestAddRejectsBeforeCreating(t *testing.T) {
	hostNS := newNS(t)
	agent := startStandIn(t)
	bad := func(change map[string]any) []byte { return netConf(t, agent.socket, change) }
	good := bad(nil)
	for _, tc := range []struct {
		name    string
		conf    []byte
		cniArgs string
		ifname  string // default eth0
		netns   string // "host": the node's own namespace; "missing": a path that does not exist
		code    uint
		want    string
	}{
		{name: "malformed JSON", conf: []byte(`{"cniVersion": "1.1.0", "name": `), code: types.ErrDecodingFailure, want: "invalid JSON"},
		{name: "no cniVersion", conf: bad(map[string]any{"cniVersion": nil}), code: types.ErrInvalidNetworkConfig, want: "no cniVersion: accepted are 1.0.0, 1.1.0"},
		{name: "old cniVersion", conf: bad(map[string]any{"cniVersion": "0.4.0"}), code: types.ErrIncompatibleCNIVersion, want: `cniVersion "0.4.0" is not supported`},
		{name: "no agentSocket", conf: bad(map[string]any{"agentSocket": nil}), code: types.ErrInvalidNetworkConfig, want: "no agentSocket"},
		{name: "relative agentSocket", conf: bad(map[string]any{"agentSocket": "agent.sock"}), code: types.ErrInvalidNetworkConfig, want: `agentSocket "agent.sock" is not an absolute path`},
		{name: "agentSocket not a string", conf: bad(map[string]any{"agentSocket": 42}), code: types.ErrInvalidNetworkConfig, want: `field "agentSocket" is a JSON number`},
		{name: "bad runtimeConfig label", conf: bad(map[string]any{"runtimeConfig": map[string]any{"labels": map[string]string{"app!": "web"}}}), code: types.ErrInvalidNetworkConfig, want: `label key "app!"`},
		{name: "bad port mapping", conf: bad(map[string]any{"runtimeConfig": map[string]any{"portMappings": []map[string]any{{"hostPort": 0, "containerPort": 80}}}}), code: types.ErrInvalidNetworkConfig, want: "hostPort 0 is out of range"},
		{name: "bad WEFT_LABELS", conf: good, cniArgs: "WEFT_LABELS=app", code: types.ErrInvalidEnvironmentVariables, want: `label "app" has no '='`},
		{name: "unknown CNI_ARGS key", conf: good, cniArgs: "FOO=bar", code: types.ErrInvalidEnvironmentVariables, want: `unknown key "FOO"`},
		{name: "bad namespace", conf: good, cniArgs: "K8S_POD_NAMESPACE=Shop", code: types.ErrInvalidEnvironmentVariables, want: "accepted is a DNS label"},
		{name: "interface name too long", conf: good, ifname: "eth0123456789abc", code: types.ErrInvalidEnvironmentVariables, want: `CNI_IFNAME "eth0123456789abc": interface name is too long`},
		{name: "missing netns", conf: good, netns: "missing", code: types.ErrUnknownContainer, want: "does not exist: accepted is the path of an existing network namespace"},
		{name: "netns not a namespace", conf: good, netns: "file", code: types.ErrUnknownContainer, want: "is not a network namespace: accepted is the path of an existing network namespace"},
		{name: "the node's own netns", conf: good, netns: "host", code: types.ErrInvalidEnvironmentVariables, want: "is the node's own network namespace"},
		{name: "no agent socket", conf: bad(map[string]any{"agentSocket": "/nonexistent/weft/agent.sock"}), code: types.ErrTryAgainLater, want: "is the agent running on this node?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			podNS := newNS(t)
			ifname := "eth0"
			if tc.ifname != "" {
				ifname = tc.ifname
			}
			args := cmdArgs(tc.conf, podNS, randomID(t), ifname, tc.cniArgs)
			switch tc.netns {
			case "host":
				args.Netns = hostNS.Path()
			case "missing":
				args.Netns = filepath.Join(t.TempDir(), "no-such-netns")
			case "file":
				args.Netns = filepath.Join(t.TempDir(), "not-a-netns")
				if err := os.WriteFile(args.Netns, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) })
			wantCode(t, err, tc.code, tc.want)
			if err != nil && strings.Contains(strings.ToLower(err.Error()), "magic") {
				t.Errorf("the message quotes the filesystem magic: %v", err)
			}
			assertNothingLeft(t, hostNS, podNS, agent)
			if got := agent.called("CreateEndpoint " + args.ContainerID + "/" + ifname); got != 0 {
				t.Errorf("CreateEndpoint called %d times, want 0", got)
			}
		})
	}
}

// A second ADD of the same container and interface, or of another container
// into an interface name the pod already uses, fails without harming the
// first endpoint.
func TestAddTwiceKeepsTheFirst(t *testing.T) {
	hostNS, podNS := newNS(t), newNS(t)
	agent := startStandIn(t)
	conf := netConf(t, agent.socket, nil)
	first := cmdArgs(conf, podNS, randomID(t), "eth0", "")
	if _, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), first) }); err != nil {
		t.Fatalf("first ADD: %v", err)
	}
	for _, tc := range []struct {
		name string
		args *skel.CmdArgs
		want string
	}{
		{"same container", first, "a link of that name already exists on the node"},
		{"other container, same ifname", cmdArgs(conf, podNS, randomID(t), "eth0", ""), "the pod already has an interface of that name"},
	} {
		_, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), tc.args) })
		wantCode(t, err, types.ErrInternal, tc.want)
		if _, err := inNS(t, hostNS, func() (any, error) { return nil, check(t.Context(), first) }); err != nil {
			t.Errorf("%s: CHECK of the first endpoint after the failed ADD: %v", tc.name, err)
		}
	}
	if eps := agent.endpointKeys(); !slices.Equal(eps, []string{first.ContainerID + "/eth0"}) {
		t.Errorf("agent endpoints = %v, want only the first", eps)
	}
}

// DEL with the agent away removes the veth and asks to be retried (11); the
// retry, with the agent back, deletes the endpoint.
func TestDelRetriesWhenAgentAway(t *testing.T) {
	hostNS, podNS := newNS(t), newNS(t)
	agent := startStandIn(t)
	args := cmdArgs(netConf(t, agent.socket, nil), podNS, randomID(t), "eth0", "")
	if _, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) }); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	away := *args
	away.StdinData = netConf(t, filepath.Join(t.TempDir(), "gone.sock"), nil)
	_, err := inNS(t, hostNS, func() (any, error) { return nil, del(t.Context(), &away) })
	wantCode(t, err, types.ErrTryAgainLater, "gone.sock")
	if l := lxcLinks(t, hostNS); len(l) != 0 {
		t.Errorf("host veths after DEL without agent = %v, want none", l)
	}
	if _, err := inNS(t, hostNS, func() (any, error) { return nil, del(t.Context(), args) }); err != nil {
		t.Fatalf("DEL retry: %v", err)
	}
	assertNothingLeft(t, hostNS, podNS, agent)
}

// STATUS succeeds while the agent answers and says "not available" (50)
// otherwise.
func TestStatus(t *testing.T) {
	agent := startStandIn(t)
	dead := filepath.Join(t.TempDir(), "agent.sock")
	if err := os.WriteFile(dead, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, socket, want string
	}{
		{"agent answers", agent.socket, ""},
		{"no socket", "/nonexistent/agent.sock", "/nonexistent/agent.sock"},
		{"nobody listening", dead, "ask status at weft-agent " + dead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := statusCmd(t.Context(), &skel.CmdArgs{StdinData: netConf(t, tc.socket, nil)})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("STATUS: %v", err)
				}
				return
			}
			wantCode(t, err, ErrPluginNotAvailable, tc.want)
		})
	}
}

// assertNothingLeft checks what a user would look at after a failed ADD or a
// DEL: no veth on the node, no interface or address in the pod, no endpoint.
func assertNothingLeft(t *testing.T, hostNS, podNS ns.NetNS, agent *standIn) {
	t.Helper()
	if l := lxcLinks(t, hostNS); len(l) != 0 {
		t.Errorf("host veths left = %v, want none", l)
	}
	if l := vethLinks(t, podNS); len(l) != 0 {
		t.Errorf("pod veths left = %v, want none", l)
	}
	if a := ipv4Addrs(t, podNS); len(a) != 0 {
		t.Errorf("pod addresses left = %v, want none", a)
	}
	if eps := agent.endpointKeys(); len(eps) != 0 {
		t.Errorf("agent endpoints left = %v, want none", eps)
	}
}

// DEL after the pod's namespace is gone (the runtime removed it first)
// succeeds and still deletes the endpoint.
func TestDelAfterPodNetnsGone(t *testing.T) {
	hostNS := newNS(t)
	agent := startStandIn(t)
	podNS, err := testutils.NewNS()
	if err != nil {
		t.Fatalf("create netns: %v", err)
	}
	removed := false
	remove := func() {
		if !removed {
			removed = true
			podNS.Close()
			if err := testutils.UnmountNS(podNS); err != nil {
				t.Errorf("remove netns: %v", err)
			}
		}
	}
	t.Cleanup(remove)
	args := cmdArgs(netConf(t, agent.socket, nil), podNS, randomID(t), "eth0", "")
	if _, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) }); err != nil {
		t.Fatalf("ADD: %v", err)
	}
	remove()
	for i := range 2 {
		if _, err := inNS(t, hostNS, func() (any, error) { return nil, del(t.Context(), args) }); err != nil {
			t.Fatalf("DEL #%d with the netns gone: %v", i+1, err)
		}
	}
	if l := lxcLinks(t, hostNS); len(l) != 0 {
		t.Errorf("host veths after DEL = %v, want none", l)
	}
	if eps := agent.endpointKeys(); len(eps) != 0 {
		t.Errorf("agent endpoints after DEL = %v, want none", eps)
	}
}
