package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/state/records"
)

// serveAdmin serves the admin API on every admin listener until ctx ends.
func (s *Server) serveAdmin(ctx context.Context) error {
	cert, err := tls.LoadX509KeyPair(s.dir.Cert(clustermesh.Server), s.dir.Key(clustermesh.Server))
	if err != nil {
		return fmt.Errorf("load admin API certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.ca.Cert)
	creds := credentials.NewTLS(&tls.Config{
		MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	srv := grpc.NewServer(grpc.Creds(creds), grpc.UnaryInterceptor(s.authorize))
	adminapi.RegisterAdminServer(srv, &admin{s: s})
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(s.admin))
	for i, l := range s.admin {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				errs[i] = fmt.Errorf("serve admin API on %s: %w", l.Addr(), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// authorize admits only clients whose verified certificate has CN admin,
// and counts calls.
func (s *Server) authorize(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
	resp, err := func() (any, error) {
		p, ok := peer.FromContext(ctx)
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "no peer information")
		}
		ti, ok := p.AuthInfo.(credentials.TLSInfo)
		if !ok || len(ti.State.VerifiedChains) == 0 {
			return nil, status.Error(codes.Unauthenticated, "a client certificate signed by the cluster's CA is required")
		}
		if cn := ti.State.VerifiedChains[0][0].Subject.CommonName; cn != clustermesh.UserAdmin {
			return nil, status.Errorf(codes.PermissionDenied, "certificate %q may not use the admin API; use the admin certificate of the clustermesh directory", cn)
		}
		return handler(ctx, req)
	}()
	s.m.adminRequests.WithLabelValues(method, status.Code(err).String()).Inc()
	return resp, err
}

// admin implements adminapi.AdminServer.
type admin struct {
	adminapi.UnimplementedAdminServer
	s *Server
}

func (a *admin) Info(ctx context.Context, _ *adminapi.InfoRequest) (*adminapi.ClusterInfo, error) {
	info := a.s.cfg.info()
	info.CA = a.s.caBundle()
	return clustermesh.InfoToAPI(info), nil
}

func (a *admin) SignRemote(ctx context.Context, req *adminapi.SignRemoteRequest) (*adminapi.Credentials, error) {
	if err := checkRemoteName(req.Cluster, a.s.cc.Name); err != nil {
		return nil, err
	}
	if err := addRemoteUser(ctx, a.s.served.Raw(), req.Cluster); err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	if _, err := a.s.source.UpdateIfDifferent(ctx, clustermesh.ReaderKey(a.s.source.Prefix(), req.Cluster), clustermesh.ReaderValue(req.Cluster)); err != nil {
		return nil, status.Error(codes.Unavailable, fmt.Sprintf("record reader %s: %v", req.Cluster, err))
	}
	user := clustermesh.RemoteUser(req.Cluster)
	cert, key, err := a.s.remoteCA.Issue(user, false, nil)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	a.s.front.Allow(req.Cluster)
	a.s.m.certificatesSign.Inc()
	a.s.log.Info("signed a certificate for a remote cluster", "remote", req.Cluster, "user", user)
	return &adminapi.Credentials{User: user, CertPem: string(cert), KeyPem: string(key)}, nil
}

func (a *admin) AddRemote(ctx context.Context, req *adminapi.AddRemoteRequest) (*adminapi.AddRemoteResponse, error) {
	if req.Remote == nil || req.Credentials == nil {
		return nil, status.Error(codes.InvalidArgument, "add remote: remote and credentials are required")
	}
	info, err := clustermesh.InfoFromAPI(req.Remote)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	changed, err := a.s.addRemote(ctx, info, req.Credentials)
	if err != nil {
		return nil, err
	}
	return &adminapi.AddRemoteResponse{Changed: changed}, nil
}

func (a *admin) RemoveRemote(ctx context.Context, req *adminapi.RemoveRemoteRequest) (*adminapi.RemoveRemoteResponse, error) {
	if err := checkRemoteName(req.Cluster, ""); err != nil {
		return nil, err
	}
	existed, err := a.s.removeRemote(ctx, req.Cluster)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &adminapi.RemoveRemoteResponse{Existed: existed}, nil
}

func (a *admin) ListRemotes(ctx context.Context, _ *adminapi.ListRemotesRequest) (*adminapi.ListRemotesResponse, error) {
	remotes, err := a.s.listRemotes(ctx)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	readers, err := remoteReaders(ctx, a.s.served.Raw())
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	resp := &adminapi.ListRemotesResponse{Readers: readers}
	for _, r := range remotes {
		resp.Remotes = append(resp.Remotes, clustermesh.InfoToAPI(r))
	}
	a.s.m.remotes.Set(float64(len(remotes)))
	a.s.m.readers.Set(float64(len(readers)))
	return resp, nil
}

func checkRemoteName(name, self string) error {
	if err := records.ValidateMeshClusterName(name); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if name == self {
		return status.Errorf(codes.InvalidArgument, "remote cluster %q is this cluster; connect two different clusters", name)
	}
	return nil
}

// AdminAddrs are the addresses of the admin listeners.
func (s *Server) AdminAddrs() []net.Addr {
	out := make([]net.Addr, len(s.admin))
	for i, l := range s.admin {
		out[i] = l.Addr()
	}
	return out
}
