package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weftnet/weft/api/agentapi"
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
