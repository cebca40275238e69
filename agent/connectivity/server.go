package connectivity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
)

// Ports of the echo servers in every test pod.
const (
	TCPPort  = 7070
	UDPPort  = 7071
	HTTPPort = 8080
)

// Defaults of a CreateTestPodRequest that leaves the CNI paths empty: where
// docs/deploy-hosts.md installs weft-cni and its configuration list.
const (
	DefaultCNIBinDir   = "/opt/cni/bin"
	DefaultCNIConflist = "/etc/cni/net.d/10-weft.conflist"
)

// NamePrefix starts the name of every test pod.
const NamePrefix = "cx-"

// validName is a test pod name: the prefix, then a DNS label's characters.
var validName = regexp.MustCompile(`^cx-[a-z0-9]([a-z0-9-]{0,58}[a-z0-9])?$`)

// Config is what the service needs from the agent.
type Config struct {
	Node     string     // the node's name, part of namespace and container names
	NodeIP   netip.Addr // where ServeEcho listens
	StateDir string     // test pod records go to <StateDir>/connectivity
}

// Server implements agentapi.ConnectivityServer.
type Server struct {
	agentapi.UnimplementedConnectivityServer
	cfg Config
	log *slog.Logger

	mu      sync.Mutex           // serialises create and delete
	servers map[string]io.Closer // echo servers by pod name
}

// New returns the service; it creates nothing until called.
func New(cfg Config, log *slog.Logger) *Server {
	return &Server{cfg: cfg, log: log.With("component", "connectivity"), servers: map[string]io.Closer{}}
}

// Close stops every echo server (the pods stay, for the next run).
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, c := range s.servers {
		c.Close()
		delete(s.servers, name)
	}
}

// ErrInvalidName is a test pod name without the prefix or with characters
// a pod name cannot have.
var ErrInvalidName = errors.New("invalid test pod name")

func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%w %q: accepted are names starting with %q followed by lowercase letters, digits and '-' (at most 63 characters), so this API never touches a real pod", ErrInvalidName, name, NamePrefix)
	}
	return nil
}

func (s *Server) CreateTestPod(ctx context.Context, req *agentapi.CreateTestPodRequest) (*agentapi.TestPod, error) {
	if err := checkName(req.Name); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	for k := range req.Labels {
		if k == "" {
			return nil, status.Errorf(codes.InvalidArgument, "create test pod %s: a label has an empty key", req.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, created, err := s.ensurePod(ctx, req)
	if err != nil {
		return nil, err
	}
	return &agentapi.TestPod{Name: p.Name, Ip: p.IP, Mtu: uint32(p.MTU), Netns: p.NetNS, Created: created}, nil
}

func (s *Server) DeleteTestPod(ctx context.Context, req *agentapi.DeleteTestPodRequest) (*agentapi.DeleteTestPodResponse, error) {
	if err := checkName(req.Name); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	existed, err := s.deletePod(ctx, req.Name)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &agentapi.DeleteTestPodResponse{Existed: existed}, nil
}
