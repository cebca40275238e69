package flow

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weftnet/weft/api/agentapi"
)

// ServerTLS loads the certificate the Observer is served with over TCP and
// the CA whose client certificates may read flows (the relay's).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load flows certificate %s: %w", certFile, err)
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("read flows client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read flows client CA %s: no PEM certificate in it", clientCAFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// Serve serves obs on l with mutual TLS until ctx ends.
func Serve(ctx context.Context, l net.Listener, tlsCfg *tls.Config, obs agentapi.ObserverServer) error {
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(tlsCfg)))
	agentapi.RegisterObserverServer(srv, obs)
	stop := context.AfterFunc(ctx, srv.Stop)
	defer stop()
	if err := srv.Serve(l); err != nil && ctx.Err() == nil {
		return fmt.Errorf("serve flows on %s: %w", l.Addr(), err)
	}
	return nil
}
