package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"net"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/readproxy"
	"github.com/weftnet/weft/state/records"
)

// openFront loads (or creates) the remote CA, listens on the front's URLs
// and builds the read-only front remote clusters read through. Remote
// clusters' certificates are signed by the remote CA, which the served
// etcd does not trust: the front is their only way in.
func (s *Server) openFront() error {
	var created bool
	var err error
	if s.remoteCA, created, err = clustermesh.EnsureRemoteCA(s.dir, s.cfg.ClusterName); err != nil {
		return fmt.Errorf("load the remote CA: %w", err)
	}
	if created {
		s.log.Warn("created the remote CA: this clustermesh directory predates the read-only front; reconnect remote clusters (`weft clustermesh connect`) so they read through it",
			"file", s.dir.Cert(clustermesh.RemoteCAName))
	}
	cert, err := tls.LoadX509KeyPair(s.dir.Cert(clustermesh.Server), s.dir.Key(clustermesh.Server))
	if err != nil {
		return fmt.Errorf("load the serving certificate: %w", err)
	}
	clients := x509.NewCertPool()
	clients.AddCert(s.remoteCA.Cert)
	var ranges []readproxy.Range
	for _, r := range remoteRanges(records.NewKeys(s.served.Prefix()), s.cfg.ClusterName) {
		ranges = append(ranges, readproxy.Range{Key: r[0], End: r[1]})
	}
	s.front, err = readproxy.New(readproxy.Options{
		Config: s.cfg.RemoteLimits,
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
			ClientCAs: clients, ClientAuth: tls.RequireAndVerifyClientCert},
		Ranges:      ranges,
		Dial:        s.dialAsRemote,
		Readers:     func(ctx context.Context) ([]string, error) { return remoteReaders(ctx, s.served.Raw()) },
		Metrics:     s.m.reg,
		ConstLabels: map[string]string{"cluster": s.cfg.ClusterName},
		Log:         s.log,
	})
	if err != nil {
		return err
	}
	for _, raw := range s.cfg.remoteListen() {
		u, _ := url.Parse(raw)
		l, err := net.Listen("tcp", u.Host)
		if err != nil {
			return fmt.Errorf("listen for remote clusters on %s: %w", raw, err)
		}
		s.remoteL = append(s.remoteL, l)
	}
	return nil
}

// dialAsRemote connects to the served store as cluster's read-only user,
// with a certificate of the cluster's CA that never leaves this process.
func (s *Server) dialAsRemote(cluster string) (*grpc.ClientConn, error) {
	certPEM, keyPEM, err := s.ca.Issue(clustermesh.RemoteUser(cluster), false, nil)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load certificate of %s: %w", clustermesh.RemoteUser(cluster), err)
	}
	u, err := url.Parse(localURLs(s.cfg.StoreListen)[0])
	if err != nil {
		return nil, fmt.Errorf("served store URL: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.Cert)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Certificates: []tls.Certificate{pair}, ServerName: u.Hostname()}
	return grpc.NewClient(u.Host, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
}

// FrontAddrs are the addresses of the read-only front's listeners.
func (s *Server) FrontAddrs() []net.Addr {
	out := make([]net.Addr, len(s.remoteL))
	for i, l := range s.remoteL {
		out[i] = l.Addr()
	}
	return out
}

// caBundle is what remote clusters are given as this cluster's CA: the
// cluster CA (it signs the front's serving certificate) and the remote CA
// (it signs their client certificates).
func (s *Server) caBundle() string {
	return string(s.ca.CertPEM) + string(s.remoteCA.CertPEM)
}
