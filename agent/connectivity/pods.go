package connectivity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/internal/echo"
)

// podRecord is what the agent keeps of a test pod, written before the
// namespace exists (IP empty until the pod is complete).
type podRecord struct {
	Name        string `json:"name"`
	NetNS       string `json:"netns"`
	ContainerID string `json:"containerID"`
	CNIBinDir   string `json:"cniBinDir"`
	CNIConflist string `json:"cniConflist"`
	// CNIConfig is the configuration list as ADD read it: DEL runs with
	// the same, as runtimes do, even if the file changed or went.
	CNIConfig []byte            `json:"cniConfig,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	IP        string            `json:"ip,omitempty"`
	MTU       int               `json:"mtu,omitempty"`
}

func (s *Server) recordPath(name string) string {
	return filepath.Join(s.cfg.StateDir, "connectivity", name+".json")
}

func (s *Server) loadRecord(name string) (*podRecord, error) {
	raw, err := os.ReadFile(s.recordPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read test pod record: %w", err)
	}
	var p podRecord
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("read test pod record %s: %w", s.recordPath(name), err)
	}
	return &p, nil
}

func (s *Server) saveRecord(p *podRecord) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	path := s.recordPath(p.Name)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write test pod record: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("write test pod record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write test pod record: %w", err)
	}
	return nil
}

// ensurePod reuses a complete test pod (restarting its servers when this
// agent has none for it) or creates it, first removing what a failed or
// interrupted creation left. The caller holds s.mu.
func (s *Server) ensurePod(ctx context.Context, req *agentapi.CreateTestPodRequest) (*podRecord, bool, error) {
	old, err := s.loadRecord(req.Name)
	if err != nil {
		return nil, false, status.Error(codes.Internal, err.Error())
	}
	if old != nil && old.IP != "" && netnsUsable(old.NetNS) {
		_, ok := s.servers[old.Name]
		if !ok { // this agent restarted since
			err = s.startServers(old)
		}
		if err == nil {
			return old, false, nil
		}
		s.log.Warn("recreating a test pod whose echo servers do not start", "pod", old.Name, "err", err)
	}
	if old != nil {
		s.log.Info("removing a half-created test pod", "pod", old.Name)
		if _, err := s.deletePod(ctx, old.Name); err != nil {
			return nil, false, status.Errorf(codes.Internal, "remove half-created test pod %s: %v", old.Name, err)
		}
	}
	p := &podRecord{
		Name:        req.Name,
		NetNS:       "weft-" + s.cfg.Node + "-" + req.Name,
		ContainerID: "weft-connectivity-" + s.cfg.Node + "-" + req.Name,
		CNIBinDir:   req.CniBinDir,
		CNIConflist: req.CniConflist,
		Labels:      req.Labels,
	}
	if p.CNIBinDir == "" {
		p.CNIBinDir = DefaultCNIBinDir
	}
	if p.CNIConflist == "" {
		p.CNIConflist = DefaultCNIConflist
	}
	list, err := libcni.ConfListFromFile(p.CNIConflist)
	if err != nil {
		return nil, false, status.Errorf(codes.FailedPrecondition, "create test pod %s: read the node's CNI configuration list %s: %v", p.Name, p.CNIConflist, err)
	}
	p.CNIConfig = list.Bytes
	if err := s.saveRecord(p); err != nil {
		return nil, false, status.Error(codes.Internal, err.Error())
	}
	if err := s.createPod(ctx, p, list); err != nil {
		if _, derr := s.deletePod(context.WithoutCancel(ctx), p.Name); derr != nil {
			err = errors.Join(err, fmt.Errorf("clean up: %w", derr))
		}
		return nil, false, status.Errorf(codes.Internal, "create test pod %s: %v", p.Name, err)
	}
	return p, true, nil
}

// createPod makes the namespace, runs CNI ADD, reads address and MTU and
// starts the servers; the caller cleans up on error.
func (s *Server) createPod(ctx context.Context, p *podRecord, list *libcni.NetworkConfigList) error {
	if err := createNetNS(p.NetNS); err != nil {
		return err
	}
	res, err := cniConfig(s, p).AddNetworkList(ctx, list, runtimeConf(p))
	if err != nil {
		return fmt.Errorf("CNI ADD (%s from %s): %w", p.CNIConflist, p.CNIBinDir, err)
	}
	cur, err := types100.NewResultFromResult(res)
	if err != nil || len(cur.IPs) == 0 {
		return fmt.Errorf("CNI ADD (%s): the result has no address (%v)", p.CNIConflist, err)
	}
	ip, ok := netip.AddrFromSlice(cur.IPs[0].Address.IP.To4())
	if !ok {
		return fmt.Errorf("CNI ADD (%s): address %s is not IPv4", p.CNIConflist, cur.IPs[0].Address.IP)
	}
	p.IP = ip.String()
	err = inNetNS(p.NetNS, func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return fmt.Errorf("read the MTU of eth0: %w", err)
		}
		p.MTU = l.Attrs().MTU
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.startServers(p); err != nil {
		return err
	}
	return s.saveRecord(p)
}

// deletePod stops the servers, runs CNI DEL (idempotent), removes the
// namespace and the record. The caller holds s.mu.
func (s *Server) deletePod(ctx context.Context, name string) (bool, error) {
	if c, ok := s.servers[name]; ok {
		c.Close()
		delete(s.servers, name)
	}
	p, err := s.loadRecord(name)
	if err != nil || p == nil {
		return false, err
	}
	var errs []error
	if list, err := libcni.ConfListFromBytes(p.CNIConfig); err != nil {
		errs = append(errs, fmt.Errorf("read the CNI configuration list of ADD (%s) for DEL: %w", p.CNIConflist, err))
	} else if err := cniConfig(s, p).DelNetworkList(ctx, list, runtimeConf(p)); err != nil {
		errs = append(errs, fmt.Errorf("CNI DEL (%s): %w", p.CNIConflist, err))
	}
	if err := deleteNetNS(p.NetNS); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return true, errors.Join(errs...) // the record stays: a later delete retries
	}
	if err := os.Remove(s.recordPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true, fmt.Errorf("remove test pod record: %w", err)
	}
	return true, nil
}

func cniConfig(s *Server, p *podRecord) *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{p.CNIBinDir}, filepath.Join(s.cfg.StateDir, "connectivity", "cni-cache"), nil)
}

// runtimeConf is what a runtime passes: the pod's name and namespace as
// kubelet does, the labels through the "labels" capability.
func runtimeConf(p *podRecord) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: p.ContainerID,
		NetNS:       netnsPath(p.NetNS),
		IfName:      "eth0",
		Args:        [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", p.Name}},
	}
	if len(p.Labels) > 0 {
		rt.CapabilityArgs = map[string]any{"labels": p.Labels}
	}
	return rt
}

// startServers starts the pod's TCP, UDP and HTTP echo servers on its
// address.
func (s *Server) startServers(p *podRecord) error {
	var (
		ln, hln net.Listener
		pc      net.PacketConn
	)
	err := inNetNS(p.NetNS, func() (err error) {
		if ln, err = net.Listen("tcp4", net.JoinHostPort(p.IP, fmt.Sprint(TCPPort))); err != nil {
			return err
		}
		if hln, err = net.Listen("tcp4", net.JoinHostPort(p.IP, fmt.Sprint(HTTPPort))); err != nil {
			ln.Close()
			return err
		}
		if pc, err = net.ListenPacket("udp4", net.JoinHostPort(p.IP, fmt.Sprint(UDPPort))); err != nil {
			ln.Close()
			hln.Close()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("start echo servers in %s: %w", p.NetNS, err)
	}
	s.servers[p.Name] = closers{echo.ServeTCP(ln, p.Name), echo.ServeUDP(pc), echo.ServeHTTP(hln, p.Name)}
	return nil
}

type closers []interface{ Close() error }

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
