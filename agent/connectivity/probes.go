package connectivity

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/echo"
)

// in runs fn inside the namespace of test pod from, or in the agent's own
// (the host's) when from is empty.
func (s *Server) in(from string, fn func() error) error {
	if from == "" {
		return fn()
	}
	if err := checkName(from); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	s.mu.Lock()
	p, err := s.loadRecord(from)
	s.mu.Unlock()
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	if p == nil || p.IP == "" || !netnsUsable(p.NetNS) {
		return status.Errorf(codes.NotFound, "no test pod %s on node %s (CreateTestPod first)", from, s.cfg.Node)
	}
	return inNetNS(p.NetNS, fn)
}

func (s *Server) ServeEcho(req *agentapi.ServeEchoRequest, stream agentapi.Connectivity_ServeEchoServer) error {
	if req.Name == "" || req.TcpPort == 0 || req.TcpPort > 65535 || req.UdpPort == 0 || req.UdpPort > 65535 {
		return status.Errorf(codes.InvalidArgument, "serve echo: give a name and TCP and UDP ports of 1-65535 (got %q, %d, %d)", req.Name, req.TcpPort, req.UdpPort)
	}
	if !s.cfg.NodeIP.IsValid() {
		return status.Errorf(codes.FailedPrecondition, "serve echo: node %s has no address yet", s.cfg.Node)
	}
	ln, err := net.Listen("tcp4", netip.AddrPortFrom(s.cfg.NodeIP, uint16(req.TcpPort)).String())
	if err != nil {
		return status.Errorf(codes.Unavailable, "serve echo on node %s: %v", s.cfg.Node, err)
	}
	pc, err := net.ListenPacket("udp4", netip.AddrPortFrom(s.cfg.NodeIP, uint16(req.UdpPort)).String())
	if err != nil {
		ln.Close()
		return status.Errorf(codes.Unavailable, "serve echo on node %s: %v", s.cfg.Node, err)
	}
	srv := closers{echo.ServeTCP(ln, req.Name), echo.ServeUDP(pc)}
	defer srv.Close()
	if err := stream.Send(&agentapi.ServeEchoEvent{Address: s.cfg.NodeIP.String()}); err != nil {
		return err
	}
	<-stream.Context().Done() // the servers live as long as the call
	return nil
}

func (s *Server) Dial(stream agentapi.Connectivity_DialServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	network := first.Network
	if network != "tcp" && network != "udp" {
		return status.Errorf(codes.InvalidArgument, "dial: network %q: accepted are tcp and udp", network)
	}
	if _, err := netip.ParseAddrPort(first.Address); err != nil {
		return status.Errorf(codes.InvalidArgument, "dial: address %q: give ip:port", first.Address)
	}
	timeout := time.Duration(first.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx := stream.Context()
	var conn net.Conn
	err = s.in(first.From, func() error {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		var derr error
		conn, derr = d.DialContext(dctx, network+"4", first.Address)
		return derr
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.Unavailable, "dial %s %s from %s: %v", network, first.Address, where(first.From), err)
	}
	defer conn.Close()
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	if err := stream.Send(&agentapi.DialResponse{LocalAddress: conn.LocalAddr().String()}); err != nil {
		return err
	}
	go func() { // the client's bytes, until it closes its side
		if len(first.Data) > 0 {
			conn.Write(first.Data) //nolint:errcheck // the reader sees the failure
		}
		for {
			req, err := stream.Recv()
			if err != nil {
				if tc, ok := conn.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
					tc.CloseWrite() //nolint:errcheck // the peer sees it or not
				} else {
					conn.Close()
				}
				return
			}
			if _, err := conn.Write(req.Data); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if serr := stream.Send(&agentapi.DialResponse{Data: bytes.Clone(buf[:n])}); serr != nil {
				return serr
			}
		}
		if err != nil {
			return nil // EOF, or closed: the stream ends
		}
	}
}

func (s *Server) Ping(ctx context.Context, req *agentapi.PingRequest) (*agentapi.PingResponse, error) {
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil || !dst.Is4() {
		return nil, status.Errorf(codes.InvalidArgument, "ping: destination %q: give an IPv4 address", req.Dst)
	}
	if req.Size > 65507 {
		return nil, status.Errorf(codes.InvalidArgument, "ping: size %d: at most 65507", req.Size)
	}
	timeout := time.Duration(req.TimeoutMs) * time.Millisecond
	if timeout < time.Second {
		timeout = time.Second
	}
	args := []string{"-n", "-c", "1", "-W", strconv.Itoa(int(timeout / time.Second))}
	if req.Size > 0 {
		args = append(args, "-s", strconv.Itoa(int(req.Size)))
	}
	if req.DontFragment {
		args = append(args, "-M", "do")
	}
	cctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "ping", append(args, dst.String())...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = s.in(req.From, cmd.Start) // the child inherits the namespace
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.FailedPrecondition, "ping from %s: %v (is iputils ping installed on node %s?)", where(req.From), err, s.cfg.Node)
	}
	if err := cmd.Wait(); err != nil {
		return nil, status.Errorf(codes.DeadlineExceeded, "ping %s from %s on node %s: %v: %s", dst, where(req.From), s.cfg.Node, err, strings.ReplaceAll(strings.TrimSpace(out.String()), "\n", "; "))
	}
	return &agentapi.PingResponse{Output: out.String()}, nil
}

func where(from string) string {
	if from == "" {
		return "the host"
	}
	return "test pod " + from
}

var _ agentapi.ConnectivityServer = (*Server)(nil)
