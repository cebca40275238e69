package kubeserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/weftnet/weft/internal/childproc"
	"github.com/weftnet/weft/internal/toolcache"
)

// Options configure one control plane.
type Options struct {
	// Dir holds etcd's data, the certificates and the kubeconfig. Required.
	Dir string
	// EtcdBinary and APIServerBinary: empty means toolcache.Ensure builds or
	// finds the pinned versions.
	EtcdBinary      string
	APIServerBinary string
	// Log receives both processes' output and build progress; nil discards.
	Log io.Writer
	// StartTimeout bounds waiting for readiness after each start. Zero: 90s.
	StartTimeout time.Duration
	// ServiceCIDR is --service-cluster-ip-range; empty: 10.96.0.0/16.
	ServiceCIDR string
	// ExtraIPs are addresses besides 127.0.0.1 the serving certificate is
	// valid for, where a forwarder makes the API reachable (testenv's
	// underlay namespace).
	ExtraIPs []net.IP
}

// Server is one running etcd + kube-apiserver pair.
type Server struct {
	opts              Options
	pki               pki
	token             string
	etcdPort, apiPort int
	peerPort          int

	mu        sync.Mutex
	etcd, api *childproc.Process
}

// Start launches etcd, then kube-apiserver, and waits until the API
// answers /readyz.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("start kube-apiserver: Options.Dir is empty; give a directory such as t.TempDir()")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 90 * time.Second
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.96.0.0/16"
	}
	for _, b := range []struct {
		path *string
		tool toolcache.Tool
	}{{&opts.EtcdBinary, toolcache.Etcd()}, {&opts.APIServerBinary, toolcache.KubeAPIServer()}} {
		if *b.path == "" {
			p, err := toolcache.Ensure(ctx, b.tool, opts.Log)
			if err != nil {
				return nil, fmt.Errorf("find %s binary: %w", b.tool.Name, err)
			}
			*b.path = p
		}
	}
	tok := make([]byte, 16)
	_, _ = rand.Read(tok)
	s := &Server{opts: opts, token: hex.EncodeToString(tok)}
	var err error
	if s.pki, err = writePKI(opts.Dir, s.token, opts.ExtraIPs); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s.etcdPort, s.peerPort, s.apiPort = ports[0], ports[1], ports[2]
	if err := s.startEtcd(); err != nil {
		return nil, err
	}
	if err := s.StartAPIServer(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.writeKubeconfig(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) startEtcd() error {
	peer := "http://127.0.0.1:" + strconv.Itoa(s.peerPort)
	client := s.EtcdEndpoint()
	p, err := childproc.Start(s.opts.EtcdBinary, []string{
		"--name", "default", "--data-dir", filepath.Join(s.opts.Dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer, "--unsafe-no-fsync", "--log-level", "warn",
	}, s.opts.Dir, s.opts.Log)
	if err != nil {
		return err
	}
	s.etcd = p
	return nil
}

// EtcdEndpoint is the URL of the control plane's own etcd.
func (s *Server) EtcdEndpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.etcdPort) }

// Host is the API's URL, e.g. https://127.0.0.1:34567.
func (s *Server) Host() string { return "https://127.0.0.1:" + strconv.Itoa(s.apiPort) }

// Kubeconfig is the path of a kubeconfig for the admin user.
func (s *Server) Kubeconfig() string { return filepath.Join(s.opts.Dir, "kubeconfig") }

// RESTConfig reaches the API as the admin user.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{
		Host: s.Host(), BearerToken: s.token,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.pki.caPEM},
		QPS:             100, Burst: 200,
	}
}

func (s *Server) writeKubeconfig() error {
	return s.WriteKubeconfig(s.Kubeconfig(), s.Host())
}

// WriteKubeconfig writes a kubeconfig for the admin user to path that
// reaches the API at host (Host(), or the address of a forwarder whose IP
// is in Options.ExtraIPs).
func (s *Server) WriteKubeconfig(path, host string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["weft"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: s.pki.caPEM}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: s.token}
	cfg.Contexts["weft"] = &clientcmdapi.Context{Cluster: "weft", AuthInfo: "admin"}
	cfg.CurrentContext = "weft"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	return nil
}

// StartAPIServer (re)starts kube-apiserver on the same port and etcd, and
// waits until it is ready. Starting a running one does nothing.
func (s *Server) StartAPIServer(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.api != nil {
		return nil
	}
	p, err := childproc.Start(s.opts.APIServerBinary, []string{
		"--etcd-servers=" + s.EtcdEndpoint(),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(s.apiPort),
		"--cert-dir=" + s.opts.Dir,
		"--tls-cert-file=" + s.pki.cert, "--tls-private-key-file=" + s.pki.key,
		"--client-ca-file=" + s.pki.caCert, "--token-auth-file=" + s.pki.tokens,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + s.pki.saPub, "--service-account-signing-key-file=" + s.pki.saKey,
		"--service-cluster-ip-range=" + s.opts.ServiceCIDR,
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true", // as kubeadm clusters run it: CNI agents are privileged DaemonSets
		// No controller manager creates the default ServiceAccount.
		"--disable-admission-plugins=ServiceAccount",
		"--v=0",
	}, s.opts.Dir, s.opts.Log)
	if err != nil {
		return err
	}
	s.api = p
	wctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	if err := s.waitReady(wctx, p); err != nil {
		p.Stop(syscall.SIGTERM, 5*time.Second)
		s.api = nil
		return fmt.Errorf("start kube-apiserver at %s: %w", s.Host(), err)
	}
	return nil
}

// StopAPIServer stops kube-apiserver (etcd keeps running), as an outage
// of the API would.
func (s *Server) StopAPIServer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.Stop(syscall.SIGTERM, 10*time.Second)
	s.api = nil
}

func (s *Server) waitReady(ctx context.Context, p *childproc.Process) error {
	cs, err := kubernetes.NewForConfig(s.RESTConfig())
	if err != nil {
		return err
	}
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(rctx)
		cancel()
		if err == nil {
			return nil
		}
		last = fmt.Errorf("%w: %s", err, body)
		select {
		case <-p.Exited():
			return fmt.Errorf("kube-apiserver exited: %v", p.Err())
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last: %v)", ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops kube-apiserver, then etcd. Stopping twice does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.Stop(syscall.SIGTERM, 10*time.Second)
	s.api = nil
	s.etcd.Stop(syscall.SIGTERM, 10*time.Second)
	s.etcd = nil
}

// Token is the admin bearer token.
func (s *Server) Token() string { return s.token }
