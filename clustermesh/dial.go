package clustermesh

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/weftnet/weft/api/adminapi"
)

// DialAdmin connects to a cluster's admin API at addr (host:port or
// unix:///path) with the admin certificate of its clustermesh directory.
// The connection is lazy: errors show on the first call.
func DialAdmin(d Dir, addr string) (adminapi.AdminClient, func() error, error) {
	ca, err := os.ReadFile(d.Path(CAFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster's CA: %w (is %s a clustermesh directory made by `weft clustermesh enable`?)", err, d)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, nil, fmt.Errorf("CA %s: no PEM certificate", d.Path(CAFile))
	}
	cert, err := tls.LoadX509KeyPair(d.Cert(UserAdmin), d.Key(UserAdmin))
	if err != nil {
		return nil, nil, fmt.Errorf("load admin certificate: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}
	target := addr
	if strings.HasPrefix(addr, "unix:") {
		tc.ServerName = "localhost"
		if !strings.HasPrefix(addr, "unix://") {
			target = "unix://" + strings.TrimPrefix(addr, "unix:")
		}
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to admin API at %s: %w", addr, err)
	}
	return adminapi.NewAdminClient(conn), conn.Close, nil
}
