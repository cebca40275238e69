package cli

import (
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
	fs.StringVar(&r.address, "relay", "", "read the flows of every node from weft-relay at `host:port` (mutual TLS)")
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

func (oo *observeOptions) fromRelay(cmd *cobra.Command, req *agentapi.GetFlowsRequest) error {
	cfg, err := oo.relay.tlsConfig()
	if err != nil {
		return err
	}
	client, closeConn, err := agentapi.DialObserverTCP(oo.relay.address, cfg, nil)
	if err != nil {
		return err
	}
	defer closeConn()
	if err := oo.stream(cmd, client, req); err != nil {
		return fmt.Errorf("read flows from weft-relay at %s: %w", oo.relay.address, err)
	}
	return nil
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
