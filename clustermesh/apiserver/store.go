package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcdserver"
	"github.com/weftnet/weft/state/records"
)

// Roles of the served store.
const (
	roleAgent  = "weft-agent"  // read-write on the whole prefix
	roleRemote = "weft-remote" // read-only on this cluster's prefixes
)

// startStore starts the served etcd: mutual TLS, client certificates
// signed by the cluster's CA. A single member's peer URL is the client port
// + 1 over http (nothing connects to it); members of an HA cluster talk to
// each other over https with the serving certificate.
func (s *Server) startStore(ctx context.Context) (*etcdserver.Server, error) {
	d := s.dir
	tls := etcdserver.TLS{CertFile: d.Cert(clustermesh.Server), KeyFile: d.Key(clustermesh.Server),
		TrustedCAFile: d.Path(clustermesh.CAFile), ClientCertAuth: true}
	opts := etcdserver.Options{
		Name: s.cfg.StoreName, DataDir: s.cfg.StoreDataDir, ClientURLs: s.cfg.StoreListen, ClientTLS: tls,
		ClusterToken: "weft-apiserver-" + s.cfg.ClusterName,
	}
	if opts.Name == "" {
		opts.Name = "weft-apiserver-" + s.cfg.ClusterName
	}
	if opts.DataDir == "" {
		opts.DataDir = d.Path(clustermesh.EtcdDataDir)
	}
	if len(s.cfg.StoreInitialCluster) > 0 {
		opts.InitialCluster = strings.Join(s.cfg.StoreInitialCluster, ",")
		opts.PeerURLs, opts.PeerTLS = s.cfg.StorePeerListen, tls
	} else {
		for _, raw := range s.cfg.StoreListen {
			u, _ := url.Parse(raw)
			port, _ := strconv.Atoi(u.Port())
			opts.PeerURLs = append(opts.PeerURLs, "http://"+net.JoinHostPort(u.Hostname(), strconv.Itoa(port+1)))
		}
	}
	srv, err := etcdserver.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("start served store: %w", err)
	}
	return srv, nil
}

// storeConfig is a kvstore config reaching the served store as user (the
// CN of <dir>/<user>.crt).
func (s *Server) storeConfig(user string) kvstore.Config {
	cfg := kvstore.DefaultConfig()
	cfg.Endpoints = localURLs(s.cfg.StoreListen)
	cfg.Prefix = kvstore.DefaultPrefix
	cfg.RateLimit = kvstore.RateLimit{}
	cfg.TLS = kvstore.TLSFiles{CAFile: s.dir.Path(clustermesh.CAFile), CertFile: s.dir.Cert(user), KeyFile: s.dir.Key(user)}
	return cfg
}

// localURLs replaces unspecified listen hosts by loopback.
func localURLs(listen []string) []string {
	out := make([]string, 0, len(listen))
	for _, raw := range listen {
		u, err := url.Parse(raw)
		if err == nil {
			if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsUnspecified() {
				u.Host = net.JoinHostPort("127.0.0.1", u.Port())
			}
			raw = u.String()
		}
		out = append(out, raw)
	}
	return out
}

// ensureAuth creates users and roles and turns authentication on. It is
// idempotent: a restart finds them in place.
func ensureAuth(ctx context.Context, cli *clientv3.Client, prefix, cluster string) error {
	keys := records.NewKeys(prefix)
	for _, u := range []string{clustermesh.UserRoot, clustermesh.UserAgent} {
		if err := addUser(ctx, cli, u); err != nil {
			return err
		}
	}
	for _, r := range []string{"root", roleAgent, roleRemote} {
		if _, err := cli.RoleAdd(ctx, r); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("add role %s: %w", r, err)
		}
	}
	if _, err := cli.UserGrantRole(ctx, clustermesh.UserRoot, "root"); err != nil {
		return fmt.Errorf("grant root role: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, clustermesh.UserAgent, roleAgent); err != nil {
		return fmt.Errorf("grant %s role: %w", roleAgent, err)
	}
	if _, err := cli.RoleGrantPermission(ctx, roleAgent, prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(authpb.READWRITE)); err != nil {
		return fmt.Errorf("grant %s read-write on %s: %w", roleAgent, prefix, err)
	}
	for _, r := range remoteRanges(keys, cluster) {
		if _, err := cli.RoleGrantPermission(ctx, roleRemote, r[0], r[1], clientv3.PermissionType(authpb.READ)); err != nil {
			return fmt.Errorf("grant %s read on %s: %w", roleRemote, r[0], err)
		}
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("enable authentication: %w", err)
	}
	return nil
}

// remoteRanges are the [key, rangeEnd) ranges a remote cluster may read:
// this cluster's own config, records and canaries, and the heartbeat.
func remoteRanges(k records.Keys, cluster string) [][2]string {
	prefixes := []string{k.NodesPrefix(cluster), k.IPCachePrefix(cluster), k.IdentitiesPrefix(),
		k.ServicesPrefix(cluster), k.Synced(cluster, "")}
	out := [][2]string{
		{k.ClusterConfig(cluster), ""},
		{kvstore.HeartbeatKey(k.Prefix()), ""},
	}
	for _, p := range prefixes {
		out = append(out, [2]string{p, clientv3.GetPrefixRangeEnd(p)})
	}
	return out
}

func addUser(ctx context.Context, cli *clientv3.Client, name string) error {
	_, err := cli.UserAddWithOptions(ctx, name, "", &clientv3.UserAddOptions{NoPassword: true})
	if err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("add store user %s: %w", name, err)
	}
	return nil
}

// addRemoteUser gives remote cluster its read-only user here.
func addRemoteUser(ctx context.Context, cli *clientv3.Client, cluster string) error {
	user := clustermesh.RemoteUser(cluster)
	if err := addUser(ctx, cli, user); err != nil {
		return err
	}
	if _, err := cli.UserGrantRole(ctx, user, roleRemote); err != nil {
		return fmt.Errorf("grant %s to %s: %w", roleRemote, user, err)
	}
	return nil
}

// removeRemoteUser deletes the user; a missing one is not an error.
func removeRemoteUser(ctx context.Context, cli *clientv3.Client, cluster string) (bool, error) {
	_, err := cli.UserDelete(ctx, clustermesh.RemoteUser(cluster))
	if errors.Is(err, rpctypes.ErrUserNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete store user %s: %w", clustermesh.RemoteUser(cluster), err)
	}
	return true, nil
}

// remoteReaders lists the remote clusters holding a user here.
func remoteReaders(ctx context.Context, cli *clientv3.Client) ([]string, error) {
	resp, err := cli.UserList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list store users: %w", err)
	}
	var out []string
	for _, u := range resp.Users {
		if c, ok := cutRemote(u); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

func cutRemote(user string) (string, bool) {
	const p = "remote-"
	if len(user) > len(p) && user[:len(p)] == p {
		return user[len(p):], true
	}
	return "", false
}

// writeHeartbeat refreshes the heartbeat key of c.
func writeHeartbeat(ctx context.Context, c kvstore.Client, now time.Time) error {
	_, err := c.Update(ctx, kvstore.HeartbeatKey(c.Prefix()), kvstore.FormatHeartbeat(now))
	return err
}

// restoreReaders gives every remote cluster recorded as a reader in the
// cluster store its read-only user in the served store: a served store
// that starts empty (a new pod with a fresh data directory) would
// otherwise lock connected clusters out until they connect again.
func (s *Server) restoreReaders(ctx context.Context) error {
	kvs, err := s.source.List(ctx, clustermesh.ReadersPrefix(s.source.Prefix()))
	if err != nil {
		return fmt.Errorf("list the remote clusters that read this one: %w", err)
	}
	var restored []string
	for _, kv := range kvs {
		cluster := strings.TrimPrefix(kv.Key, clustermesh.ReadersPrefix(s.source.Prefix()))
		if err := records.ValidateMeshClusterName(cluster); err != nil || cluster == s.cfg.ClusterName {
			s.log.Warn("ignoring a reader record that names no other cluster", "key", kv.Key)
			continue
		}
		if err := addRemoteUser(ctx, s.served.Raw(), cluster); err != nil {
			return err
		}
		restored = append(restored, cluster)
	}
	if len(restored) > 0 {
		s.log.Info("read-only users of connected clusters in place", "readers", restored)
	}
	return nil
}
