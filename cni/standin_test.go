package cni

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/weftnet/weft/api/agentapi"
)

// standIn plays weft-agent for the plugin-logic tests only (the e2e tests
// drive the plugin against the real agent). It answers like the agent does —
// an address from a /24 pod CIDR, the router address, its MAC, the tunnel
// MTU, a default route — keeps its endpoints (the "store") and records calls
// so that a test can see that a failed ADD deleted the endpoint again.
type standIn struct {
	agentapi.UnimplementedAgentServer
	socket string

	mu        sync.Mutex
	endpoints map[string]*agentapi.Endpoint // by container/ifname
	calls     []string                      // "CreateEndpoint <container>/<ifname>", ...
	creates   []*agentapi.CreateEndpointRequest
	next      uint32

	// Behaviour a test may set before the plugin runs.
	createErr error                       // CreateEndpoint fails with it
	answer    func(ep *agentapi.Endpoint) // edits CreateEndpoint's answer
}

const (
	standInGateway = "10.100.7.1"
	standInMAC     = "02:77:65:66:74:01"
	standInMTU     = 1450
)

// startStandIn serves a stand-in agent on a fresh unix socket until the test
// ends.
func startStandIn(t *testing.T) *standIn {
	t.Helper()
	dir, err := os.MkdirTemp("", "weftcni-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &standIn{socket: filepath.Join(dir, "agent.sock"), endpoints: map[string]*agentapi.Endpoint{}}
	lis, err := net.Listen("unix", s.socket)
	if err != nil {
		t.Fatalf("listen on %s: %v", s.socket, err)
	}
	if err := os.Chmod(s.socket, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	agentapi.RegisterAgentServer(srv, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return s
}

func (s *standIn) set(f func(s *standIn)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *standIn) CreateEndpoint(_ context.Context, req *agentapi.CreateEndpointRequest) (*agentapi.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := req.GetContainerId() + "/" + req.GetIfname()
	s.calls = append(s.calls, "CreateEndpoint "+key)
	s.creates = append(s.creates, proto.Clone(req).(*agentapi.CreateEndpointRequest))
	if s.createErr != nil {
		return nil, s.createErr
	}
	if req.GetContainerId() == "" || req.GetHostIfname() == "" || req.GetPodMac() == "" {
		return nil, status.Errorf(codes.InvalidArgument, "container_id, host_ifname and pod_mac are required")
	}
	if ep, ok := s.endpoints[key]; ok {
		return proto.Clone(ep).(*agentapi.Endpoint), nil
	}
	s.next++
	ns := req.GetNamespace()
	if ns == "" {
		ns = "default"
	}
	labels := []string{"k8s:io.cilium.k8s.policy.cluster=c1", "k8s:io.kubernetes.pod.namespace=" + ns}
	for k, v := range req.GetLabels() {
		labels = append(labels, "k8s:"+k+"="+v)
	}
	slices.Sort(labels)
	ep := &agentapi.Endpoint{
		Id: s.next, ContainerId: req.GetContainerId(), Netns: req.GetNetns(),
		Ifname: req.GetIfname(), HostIfname: req.GetHostIfname(), Namespace: ns, PodName: req.GetPodName(),
		Ipv4:        fmt.Sprintf("10.100.7.%d/32", 9+s.next),
		GatewayIpv4: standInGateway, GatewayMac: standInMAC, Mtu: standInMTU,
		Routes:   []*agentapi.Route{{Dst: "0.0.0.0/0", Gw: standInGateway}},
		Identity: 65536 + 255 + s.next, Labels: labels, State: "ready", Node: "c1-n1",
	}
	if s.answer != nil {
		s.answer(ep)
	}
	s.endpoints[key] = ep
	return proto.Clone(ep).(*agentapi.Endpoint), nil
}

func (s *standIn) DeleteEndpoint(_ context.Context, req *agentapi.DeleteEndpointRequest) (*agentapi.DeleteEndpointResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := req.GetContainerId() + "/" + req.GetIfname()
	s.calls = append(s.calls, "DeleteEndpoint "+key)
	_, ok := s.endpoints[key]
	delete(s.endpoints, key)
	return &agentapi.DeleteEndpointResponse{Existed: ok}, nil
}

func (s *standIn) GetEndpoint(_ context.Context, req *agentapi.GetEndpointRequest) (*agentapi.Endpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "GetEndpoint "+req.GetContainerId())
	for _, ep := range s.endpoints {
		if ep.GetContainerId() == req.GetContainerId() {
			return proto.Clone(ep).(*agentapi.Endpoint), nil
		}
	}
	return nil, status.Errorf(codes.NotFound, "no endpoint for container %q", req.GetContainerId())
}

func (s *standIn) Status(context.Context, *agentapi.StatusRequest) (*agentapi.StatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &agentapi.StatusResponse{Node: "c1-n1", Cluster: "c1", ClusterId: 1, RoutingMode: "tunnel",
		PodCidrs: []string{"10.100.7.0/24"}, Endpoints: uint32(len(s.endpoints))}, nil
}

// endpointKeys are the endpoints the stand-in holds, sorted.
func (s *standIn) endpointKeys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.endpoints))
	for k := range s.endpoints {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// called reports how many times a call ("DeleteEndpoint c1/eth0") was made.
func (s *standIn) called(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.calls {
		if c == call {
			n++
		}
	}
	return n
}

func (s *standIn) lastCreate() *agentapi.CreateEndpointRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.creates) == 0 {
		return nil
	}
	return s.creates[len(s.creates)-1]
}
