package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"

	"github.com/weftnet/weft/api/agentapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/relay"
	"github.com/weftnet/weft/testenv"
)

// relayFlags choose weft-relay instead of one node's agent.
type relayFlags struct {
	address       string
	ca, cert, key string
	serverName    string
}

func (r *relayFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&r.address, "relay", "", "read the flows of every node from a relay (weft-apiserver --relay-listen) at `host:port` (mutual TLS), or from the relay of cluster NAME of the testenv environment (--name) with its admin certificate")
	fs.StringVar(&r.ca, "tls-ca", "", "CA `file` that signed the relay's certificate")
	fs.StringVar(&r.cert, "tls-cert", "", "client certificate `file` presented to the relay")
	fs.StringVar(&r.key, "tls-key", "", "key `file` of --tls-cert")
	fs.StringVar(&r.serverName, "tls-server-name", "", "name expected in the relay's certificate (default: the host of --relay)")
}

func (r *relayFlags) tlsConfig() (*tls.Config, error) {
	if r.ca == "" || r.cert == "" || r.key == "" {
		return nil, errors.New("--relay needs --tls-ca, --tls-cert and --tls-key (the relay serves mutual TLS only)")
	}
	cert, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		return nil, fmt.Errorf("load --tls-cert %s: %w", r.cert, err)
	}
	pem, err := os.ReadFile(r.ca)
	if err != nil {
		return nil, fmt.Errorf("read --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read --tls-ca %s: no PEM certificate in it", r.ca)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: r.serverName, MinVersion: tls.VersionTLS13}, nil
}

func (oo *observeOptions) fromRelay(cmd *cobra.Command, o *options, req *agentapi.GetFlowsRequest) error {
	addr := oo.relay.address
	var cfg *tls.Config
	var dial func(ctx context.Context, addr string) (net.Conn, error)
	var err error
	if _, _, splitErr := net.SplitHostPort(addr); splitErr != nil {
		addr, cfg, dial, err = envClusterRelay(cmd, o.envName(), oo.relay.address)
	} else {
		cfg, err = oo.relay.tlsConfig()
	}
	if err != nil {
		return err
	}
	client, closeConn, err := agentapi.DialObserverTCP(addr, cfg, dial)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := oo.stream(cmd, client, req); err != nil {
		return fmt.Errorf("read flows from the relay at %s: %w", addr, err)
	}
	return nil
}

// envClusterRelay is the relay of cluster of a testenv environment: its
// address, the admin certificate of its clustermesh directory, and a
// dialer from the underlay namespace the relay serves in.
func envClusterRelay(cmd *cobra.Command, envName, cluster string) (string, *tls.Config, func(context.Context, string) (net.Conn, error), error) {
	e, err := testenv.Load(envName, nil, cliLogger(cmd))
	if err != nil {
		return "", nil, nil, fmt.Errorf("--relay %q is not host:port, so it names a cluster of a testenv environment: %w", cluster, err)
	}
	addr, err := e.MeshRelay(cluster)
	if err != nil {
		return "", nil, nil, fmt.Errorf("--relay %q: %w (accepted: host:port, or a cluster of environment %s)", cluster, err, e.Name)
	}
	d := clustermesh.Dir(filepath.Join(e.MeshRoot(), cluster))
	if _, err := os.Stat(d.Path(clustermesh.ConfigFile)); err != nil {
		return "", nil, nil, fmt.Errorf("--relay %s: cluster %s of environment %s runs no weft-apiserver (testenv starts one per cluster when there are several, or run weft clustermesh enable)", cluster, cluster, e.Name)
	}
	rf := relayFlags{ca: d.Path(clustermesh.CAFile), cert: d.Cert(clustermesh.UserAdmin), key: d.Key(clustermesh.UserAdmin)}
	cfg, err := rf.tlsConfig()
	if err != nil {
		return "", nil, nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg.ServerName = host
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return testenv.DialIn(ctx, e.Underlay, "tcp", addr)
	}
	return addr, cfg, dial, nil
}

// envRelay merges the flows of every node of a testenv environment (every
// cluster) with an in-process relay reading the agents' unix sockets, and
// serves it on a private unix socket: the returned client reads it.
func envRelay(cmd *cobra.Command, envName string) (agentapi.ObserverClient, func(), error) {
	r, err := newEnvRelay(cmd, envName)
	if err != nil {
		return nil, nil, err
	}
	dir, err := os.MkdirTemp("", "weft-relay-")
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	sock := filepath.Join(dir, "relay.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		r.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	srv := grpc.NewServer()
	agentapi.RegisterObserverServer(srv, r)
	go srv.Serve(ln) //nolint:errcheck // ends with Stop
	client, closeConn, err := agentapi.DialObserver(cmd.Context(), sock)
	stop := func() {
		if closeConn != nil {
			closeConn()
		}
		srv.Stop()
		r.Close()
		os.RemoveAll(dir)
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return client, stop, nil
}

// newEnvRelay is a relay over every node of a testenv environment.
func newEnvRelay(cmd *cobra.Command, envName string) (*relay.Relay, error) {
	e, err := testenv.Load(envName, nil, cliLogger(cmd))
	if err != nil {
		return nil, err
	}
	var peers []relay.Peer
	for _, n := range e.Nodes {
		peers = append(peers, relay.Peer{Node: n.Name, Address: "unix:" + n.Socket})
	}
	cfg := relay.DefaultConfig()
	cfg.Peers = peers
	r, err := relay.New(cfg, cliLogger(cmd))
	if err != nil {
		return nil, fmt.Errorf("merge the nodes of environment %q: %w", envName, err)
	}
	return r, nil
}
