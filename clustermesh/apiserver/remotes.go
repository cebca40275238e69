package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

const infoFile = "info.json"

// addRemote stores the credentials to reach info's cluster and publishes
// clustermesh/v1/remotes/<cluster> for this cluster's agents. It reports
// whether the record changed.
func (s *Server) addRemote(ctx context.Context, info clustermesh.Info, creds *adminapi.Credentials) (bool, error) {
	remotes, err := s.listRemotes(ctx)
	if err != nil {
		return false, status.Error(codes.Unavailable, err.Error())
	}
	local := s.cfg.info()
	if err := clustermesh.CheckJoin(local, remotes, info); err != nil {
		return false, status.Error(codes.FailedPrecondition, err.Error())
	}
	if err := checkCredentials(info, creds, local.Name); err != nil {
		return false, status.Error(codes.InvalidArgument, err.Error())
	}
	dir := s.dir.Remote(info.Name)
	if err := clustermesh.WritePair(dir, "client", []byte(creds.CertPem), []byte(creds.KeyPem)); err != nil {
		return false, status.Error(codes.Internal, err.Error())
	}
	if err := clustermesh.WriteFile(filepath.Join(dir, clustermesh.CAFile), []byte(info.CA), 0o644); err != nil {
		return false, status.Error(codes.Internal, err.Error())
	}
	raw, _ := json.MarshalIndent(info, "", "  ")
	if err := clustermesh.WriteFile(filepath.Join(dir, infoFile), raw, 0o644); err != nil {
		return false, status.Error(codes.Internal, err.Error())
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false, status.Error(codes.Internal, err.Error())
	}
	stored, err := clustermesh.EncodeCredentials(clustermesh.StoredCredentials{Cluster: info.Name, CA: info.CA, Cert: creds.CertPem, Key: creds.KeyPem, Remote: &info})
	if err != nil {
		return false, status.Error(codes.InvalidArgument, err.Error())
	}
	if _, err := s.source.Update(ctx, clustermesh.CredentialsKey(s.source.Prefix(), info.Name), stored); err != nil {
		return false, status.Error(codes.Unavailable, fmt.Sprintf("store the credentials for %s: %v", info.Name, err))
	}
	keys := records.NewKeys(s.source.Prefix())
	key := keys.Remote(info.Name)
	rec := records.Remote{Cluster: info.Name, Endpoints: info.Endpoints, CA: info.CA, ClientRef: abs}
	val, err := records.Encode(key, &rec)
	if err != nil {
		return false, status.Error(codes.InvalidArgument, err.Error())
	}
	changed, err := s.source.UpdateIfDifferent(ctx, key, val)
	if err != nil {
		return false, status.Error(codes.Unavailable, fmt.Sprintf("publish remote %s: %v", info.Name, err))
	}
	if changed {
		s.log.Info("remote cluster added", "remote", info.Name, "id", info.ID, "endpoints", info.Endpoints)
	}
	return changed, nil
}

// checkCredentials verifies that creds are a client certificate of user
// remote-<local> signed by the remote's CA, with its key.
func checkCredentials(info clustermesh.Info, creds *adminapi.Credentials, local string) error {
	pair, err := tls.X509KeyPair([]byte(creds.CertPem), []byte(creds.KeyPem))
	if err != nil {
		return fmt.Errorf("credentials for %s: the certificate and key do not form a pair: %w", info.Name, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", info.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(info.CA)) {
		return fmt.Errorf("remote %s: its CA is not a PEM certificate", info.Name)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("credentials for %s: not signed by its CA: %w", info.Name, err)
	}
	if want := clustermesh.RemoteUser(local); cert.Subject.CommonName != want {
		return fmt.Errorf("credentials for %s: certificate of %q, want %q", info.Name, cert.Subject.CommonName, want)
	}
	return nil
}

// removeRemote disconnects cluster: the record goes (agents drain its
// entries), its credentials here and its read-only user of the served store.
func (s *Server) removeRemote(ctx context.Context, cluster string) (bool, error) {
	keys := records.NewKeys(s.source.Prefix())
	existed := true
	if _, err := s.source.Get(ctx, keys.Remote(cluster)); errors.Is(err, kvstore.ErrNotFound) {
		existed = false
	} else if err != nil {
		return false, fmt.Errorf("read remote %s: %w", cluster, err)
	}
	if err := s.source.Delete(ctx, keys.Remote(cluster)); err != nil {
		return false, fmt.Errorf("delete remote %s: %w", cluster, err)
	}
	if err := s.source.Delete(ctx, clustermesh.CredentialsKey(s.source.Prefix(), cluster)); err != nil {
		return false, fmt.Errorf("delete the credentials for %s: %w", cluster, err)
	}
	if _, err := os.Stat(s.dir.Remote(cluster)); err == nil {
		existed = true
	}
	if err := os.RemoveAll(s.dir.Remote(cluster)); err != nil {
		return false, fmt.Errorf("remove credentials of %s: %w", cluster, err)
	}
	had, err := removeRemoteUser(ctx, s.served.Raw(), cluster)
	if err != nil {
		return false, err
	}
	if err := s.source.Delete(ctx, clustermesh.ReaderKey(s.source.Prefix(), cluster)); err != nil {
		return false, fmt.Errorf("delete reader %s: %w", cluster, err)
	}
	s.front.Revoke(cluster)
	if existed || had {
		s.log.Info("remote cluster removed", "remote", cluster)
	}
	return existed || had, nil
}

// listRemotes lists the remote clusters of this cluster, with what was
// recorded about them at connect time.
func (s *Server) listRemotes(ctx context.Context) ([]clustermesh.Info, error) {
	keys := records.NewKeys(s.source.Prefix())
	kvs, err := s.source.List(ctx, keys.Remote(""))
	if err != nil {
		return nil, fmt.Errorf("list remotes: %w", err)
	}
	var out []clustermesh.Info
	for _, kv := range kvs {
		r, err := keys.DecodeRemote(kv.Key, kv.Value)
		if err != nil {
			s.log.Warn("ignore malformed remote record", "err", err)
			continue
		}
		info := clustermesh.Info{Name: r.Cluster, Endpoints: r.Endpoints, CA: r.CA}
		raw, err := os.ReadFile(filepath.Join(s.dir.Remote(r.Cluster), infoFile))
		if err == nil {
			err = json.Unmarshal(raw, &info)
		}
		if errors.Is(err, fs.ErrNotExist) {
			// Connected through another apiserver of the cluster: what it
			// recorded is in the cluster store.
			err = nil
			if kv, gerr := s.source.Get(ctx, clustermesh.CredentialsKey(s.source.Prefix(), r.Cluster)); gerr == nil {
				if c, derr := clustermesh.DecodeCredentials(kv.Key, kv.Value); derr == nil && c.Remote != nil {
					info = *c.Remote
				}
			}
		}
		if err != nil {
			s.log.Warn("read remote info", "remote", r.Cluster, "err", err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b clustermesh.Info) int { return compare(a.Name, b.Name) })
	return out, nil
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
