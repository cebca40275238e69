package cni

import (
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"

	"github.com/containernetworking/cni/pkg/skel"
)

// A pod gets its veth, address, MTU, routes and gateway neighbour; CHECK
// passes; DEL removes everything and can be repeated.
func TestAddCheckDel(t *testing.T) {
	hostNS, podNS := newNS(t), newNS(t)
	agent := startStandIn(t)
	cid := randomID(t)
	conf := netConf(t, agent.socket, map[string]any{
		"runtimeConfig": map[string]any{
			"labels":       map[string]string{"tier": "front"},
			"portMappings": []map[string]any{{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}},
		},
	})
	args := cmdArgs(conf, podNS, cid, "eth0", "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1;WEFT_LABELS=app=web;K8S_POD_UID=x")

	res, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) })
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	hostName := HostIfName(cid, "eth0")

	// What the agent was asked.
	req := agent.lastCreate()
	if req.GetHostIfname() != hostName || req.GetIfname() != "eth0" || req.GetNetns() != podNS.Path() ||
		req.GetNamespace() != "shop" || req.GetPodName() != "web-1" {
		t.Errorf("CreateEndpoint request = %v", req)
	}
	if want := map[string]string{"app": "web", "tier": "front"}; !mapsEqual(req.GetLabels(), want) {
		t.Errorf("labels sent to the agent = %v, want %v", req.GetLabels(), want)
	}
	if pm := req.GetPortMappings(); len(pm) != 1 || pm[0].GetHostPort() != 8080 || pm[0].GetProtocol() != "TCP" {
		t.Errorf("port mappings sent to the agent = %v", pm)
	}

	// What the pod sees.
	pod := links(t, podNS)["eth0"]
	if pod.Type != "veth" || !pod.Up || pod.MTU != standInMTU || pod.MAC != req.GetPodMac() {
		t.Errorf("pod eth0 = %+v, want an up veth with MTU %d and MAC %s", pod, standInMTU, req.GetPodMac())
	}
	if !slices.Equal(pod.Addrs, []string{"10.100.7.10/32"}) {
		t.Errorf("pod addresses = %v, want [10.100.7.10/32]", pod.Addrs)
	}
	if want := []string{"0.0.0.0/0 via 10.100.7.1", "10.100.7.1/32 scope link"}; !slices.Equal(pod.Routes, want) {
		t.Errorf("pod routes = %v, want %v", pod.Routes, want)
	}
	if want := []string{"10.100.7.1 " + standInMAC + " PERMANENT"}; !slices.Equal(pod.Neighs, want) {
		t.Errorf("pod neighbours = %v, want %v", pod.Neighs, want)
	}
	host := links(t, hostNS)[hostName]
	if host.Type != "veth" || !host.Up || host.MTU != standInMTU {
		t.Errorf("host %s = %+v, want an up veth with MTU %d", hostName, host, standInMTU)
	}

	// What the runtime is told.
	if res.CNIVersion != "1.1.0" || len(res.Interfaces) != 2 || len(res.IPs) != 1 {
		t.Fatalf("result = %+v", res)
	}
	if i := res.Interfaces[0]; i.Name != hostName || i.Mac != host.MAC || i.Sandbox != "" || i.Mtu != standInMTU {
		t.Errorf("result host interface = %+v", i)
	}
	if i := res.Interfaces[1]; i.Name != "eth0" || i.Mac != pod.MAC || i.Sandbox != podNS.Path() {
		t.Errorf("result pod interface = %+v", i)
	}
	if ip := res.IPs[0]; *ip.Interface != 1 || ip.Address.String() != "10.100.7.10/32" || ip.Gateway.String() != standInGateway {
		t.Errorf("result IP = %+v", ip)
	}
	if len(res.Routes) != 1 || res.Routes[0].Dst.String() != "0.0.0.0/0" || res.Routes[0].GW.String() != standInGateway {
		t.Errorf("result routes = %v", res.Routes)
	}

	// CHECK with the result as prevResult, as a runtime does.
	checkArgs := *args
	checkArgs.StdinData = withPrevResult(t, conf, res)
	if _, err := inNS(t, hostNS, func() (any, error) { return nil, check(t.Context(), &checkArgs) }); err != nil {
		t.Errorf("CHECK after ADD: %v", err)
	}

	// DEL twice, then once more with the netns gone from the arguments.
	for i, a := range []*skel.CmdArgs{args, args, {ContainerID: cid, IfName: "eth0", StdinData: conf}} {
		if _, err := inNS(t, hostNS, func() (any, error) { return nil, del(t.Context(), a) }); err != nil {
			t.Errorf("DEL #%d: %v", i+1, err)
		}
	}
	if l := vethLinks(t, podNS); len(l) != 0 {
		t.Errorf("pod veths after DEL = %v, want none", l)
	}
	if l := lxcLinks(t, hostNS); len(l) != 0 {
		t.Errorf("host veths after DEL = %v, want none", l)
	}
	if eps := agent.endpointKeys(); len(eps) != 0 {
		t.Errorf("agent endpoints after DEL = %v, want none", eps)
	}
	// CHECK now reports the missing endpoint as an unknown container.
	_, err = inNS(t, hostNS, func() (any, error) { return nil, check(t.Context(), args) })
	wantCode(t, err, types.ErrUnknownContainer, "no endpoint for container")
}

// CHECK notices what a user would: a route, address or neighbour gone.
func TestCheckDetectsDrift(t *testing.T) {
	eth0 := func() netlink.Link {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			panic(err)
		}
		return l
	}
	for _, tc := range []struct {
		name   string
		change func() error // runs in the pod
		want   string
	}{
		{"default route deleted", func() error {
			return netlink.RouteDel(&netlink.Route{LinkIndex: eth0().Attrs().Index, Dst: defaultDst(), Gw: net.ParseIP(standInGateway)})
		}, "route 0.0.0.0/0 via 10.100.7.1 is missing"},
		{"address deleted", func() error {
			return netlink.AddrDel(eth0(), &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.100.7.10"), Mask: net.CIDRMask(32, 32)}})
		}, "address 10.100.7.10/32 is missing"},
		{"neighbour changed", func() error {
			mac, _ := net.ParseMAC("02:00:00:00:00:99")
			return netlink.NeighSet(&netlink.Neigh{LinkIndex: eth0().Attrs().Index, Family: netlink.FAMILY_V4,
				State: netlink.NUD_PERMANENT, IP: net.ParseIP(standInGateway), HardwareAddr: mac})
		}, "want permanent " + standInMAC},
		{"interface down", func() error { return netlink.LinkSetDown(eth0()) }, "is down"},
		{"veth deleted", func() error { return netlink.LinkDel(eth0()) }, "check host veth lxc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hostNS, podNS := newNS(t), newNS(t)
			agent := startStandIn(t)
			args := cmdArgs(netConf(t, agent.socket, nil), podNS, randomID(t), "eth0", "")
			if _, err := inNS(t, hostNS, func() (*current.Result, error) { return add(t.Context(), args) }); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			if _, err := inNS(t, podNS, func() (any, error) { return nil, tc.change() }); err != nil {
				t.Fatalf("break the pod: %v", err)
			}
			_, err := inNS(t, hostNS, func() (any, error) { return nil, check(t.Context(), args) })
			wantCode(t, err, types.ErrInternal, tc.want)
		})
	}
}

// withPrevResult adds the ADD result to conf as "prevResult".
func withPrevResult(t *testing.T, conf []byte, res *current.Result) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(conf, &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var prev map[string]any
	if err := json.Unmarshal(b, &prev); err != nil {
		t.Fatal(err)
	}
	m["prevResult"] = prev
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantCode fails unless err is a CNI error with code whose message contains
// want, and which encodes as the CNI error JSON.
func wantCode(t *testing.T, err error, code uint, want string) {
	t.Helper()
	var e *types.Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want a CNI error with code %d", err, err, code)
	}
	if e.Code != code || !strings.Contains(e.Msg, want) {
		t.Errorf("CNI error = code %d %q, want code %d containing %q", e.Code, e.Msg, code, want)
	}
	b, _ := json.Marshal(e)
	t.Logf("CNI error: %s", b)
	var decoded struct {
		Code uint   `json:"code"`
		Msg  string `json:"msg"`
	}
	if err := json.Unmarshal(b, &decoded); err != nil || decoded.Code != code || decoded.Msg == "" {
		t.Errorf("CNI error JSON = %s, want {\"code\":%d,\"msg\":...}", b, code)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
