package apiserver_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weftnet/weft/api/adminapi"
	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/etcd"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// remoteCreds asks c to sign a certificate for remote cluster name and
// writes it into a temporary directory.
func remoteCreds(t *testing.T, c *apiservertest.Cluster, name string) (cert, key string) {
	t.Helper()
	cr, err := c.Admin(t).SignRemote(statetest.Context(t, time.Minute), &adminapi.SignRemoteRequest{Cluster: name})
	if err != nil {
		t.Fatalf("sign remote %s: %v", name, err)
	}
	if cr.User != clustermesh.RemoteUser(name) {
		t.Fatalf("signed user %q, want %q", cr.User, clustermesh.RemoteUser(name))
	}
	dir := t.TempDir()
	return writeFile(t, dir, "client.crt", []byte(cr.CertPem)), writeFile(t, dir, "client.key", []byte(cr.KeyPem))
}

func denied(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "PermissionDenied"))
}

// TestRemoteUserReadsOnly: a remote cluster's certificate reads this
// cluster's records, and can neither write anything nor read the rest.
func TestRemoteUserReadsOnly(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{})
	src := c.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	put(t, src, sk.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	cert, key := remoteCreds(t, c, "c2")
	remote := servedWith(t, c.RemoteConfig(cert, key))
	k := records.NewKeys(remote.Prefix())
	statetest.Eventually(t, time.Minute, "the remote user reads the cluster's nodes", func() error {
		kvs, err := remote.List(ctx, k.NodesPrefix("c1"))
		if err == nil && len(kvs) != 1 {
			err = fmt.Errorf("listed %d nodes, want 1", len(kvs))
		}
		return err
	})
	for _, key := range []string{k.ClusterConfig("c1"), k.Synced("c1", records.KindIPCache), kvstore.HeartbeatKey(k.Prefix())} {
		statetest.Eventually(t, time.Minute, "the remote user reads "+key, func() error {
			_, err := remote.Get(ctx, key)
			return err
		})
	}
	writes := map[string]func() error{
		"update a node": func() error { _, err := remote.Update(ctx, k.Node("c1", "n2"), []byte("{}")); return err },
		"create an ipcache key": func() error {
			_, err := remote.Create(ctx, k.IPCache("c1", netip.MustParseAddr("10.100.0.9")), []byte("{}"))
			return err
		},
		"delete a node":        func() error { return remote.Delete(ctx, k.Node("c1", "n1")) },
		"overwrite the config": func() error { _, err := remote.Update(ctx, k.ClusterConfig("c1"), []byte("{}")); return err },
		"write a leased key": func() error {
			_, err := remote.Update(ctx, k.Node("c1", "n3"), []byte("{}"), kvstore.Leased())
			return err
		},
		"write its own prefix":  func() error { _, err := remote.Update(ctx, k.Node("c2", "x"), []byte("{}")); return err },
		"read the remotes":      func() error { _, err := remote.List(ctx, k.Remote("")); return err },
		"read another cluster":  func() error { _, err := remote.List(ctx, k.NodesPrefix("c3")); return err },
		"read identity refs":    func() error { _, err := remote.List(ctx, k.IdentityRefsPrefix()); return err },
		"read the ipam":         func() error { _, err := remote.List(ctx, k.IPAMPrefix("c1")); return err },
		"read another's config": func() error { _, err := remote.Get(ctx, k.ClusterConfig("c3")); return err },
		// The Ingresses' TLS private keys stay in their cluster.
		"read the Ingress secrets": func() error { _, err := remote.List(ctx, k.IngressSecretsPrefix("c1")); return err },
		"read an Ingress secret":   func() error { _, err := remote.Get(ctx, k.IngressSecret("c1", "default", "web")); return err },
		"read the policies":        func() error { _, err := remote.List(ctx, k.PoliciesPrefix()); return err },
	}
	for what, fn := range writes {
		if err := fn(); !denied(err) {
			t.Errorf("%s with the remote certificate: got %v, want permission denied", what, err)
		}
	}
	if _, err := remote.Get(ctx, k.Node("c1", "n1")); err != nil {
		t.Fatalf("node n1 after the refused writes: %v", err)
	}
}

// TestRefusedConnections: plaintext, no client certificate, a certificate
// of another CA, and a revoked remote are refused by the served store;
// only the admin certificate may use the admin API.
func TestRefusedConnections(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{})
	other := apiservertest.Start(t, "c9", 9, apiservertest.Options{NoServer: true})

	open := func(cfg kvstore.Config) error {
		cfg.DialTimeout = 2 * time.Second
		cl, err := etcd.New(ctx, cfg, statetest.Logger(t))
		if err != nil {
			return err
		}
		defer cl.Close(ctx)
		_, err = cl.List(ctx, records.NewKeys(cl.Prefix()).NodesPrefix("c1"))
		return err
	}
	plain := c.ServedConfig("", "")
	plain.Endpoints = []string{strings.Replace(plain.Endpoints[0], "https://", "http://", 1)}
	plain.TLS = kvstore.TLSFiles{}
	wrongCA := c.ServedConfig(other.Dir.Cert(clustermesh.UserRoot), other.Dir.Key(clustermesh.UserRoot))
	wrongCA.TLS.CAFile = c.Dir.Path(clustermesh.CAFile)
	cases := map[string]kvstore.Config{
		"plaintext":                 plain,
		"no client certificate":     c.ServedConfig("", ""),
		"certificate of another CA": wrongCA,
	}
	for name, cfg := range cases {
		if err := open(cfg); err == nil {
			t.Errorf("%s: connected and listed, want refused", name)
		}
	}
	if err := open(c.ServedConfig(c.Dir.Cert(clustermesh.UserAgent), c.Dir.Key(clustermesh.UserAgent))); err != nil {
		t.Errorf("the agent certificate: %v", err)
	}

	// A remote's certificate reads through the front only, and not at
	// all once the remote is disconnected.
	cert, key := remoteCreds(t, c, "c2")
	if err := open(c.RemoteConfig(cert, key)); err != nil {
		t.Fatalf("remote c2 through the front before removal: %v", err)
	}
	if err := open(c.ServedConfig(cert, key)); err == nil {
		t.Error("remote c2 straight at the served store: connected and listed, want refused")
	}
	if err := open(c.RemoteConfig(c.Dir.Cert(clustermesh.UserAgent), c.Dir.Key(clustermesh.UserAgent))); err == nil {
		t.Error("the agent certificate at the front: connected and listed, want refused")
	}
	if _, err := c.Admin(t).RemoveRemote(ctx, &adminapi.RemoveRemoteRequest{Cluster: "c2"}); err != nil {
		t.Fatal(err)
	}
	if err := open(c.RemoteConfig(cert, key)); err == nil {
		t.Error("remote c2 after removal: still reads")
	}

	// The admin API wants the admin certificate of this cluster's CA.
	for _, name := range []string{clustermesh.UserAgent, clustermesh.UserRoot} {
		d := clustermesh.Dir(t.TempDir())
		writeFile(t, string(d), clustermesh.CAFile, readFile(t, c.Dir.Path(clustermesh.CAFile)))
		writeFile(t, string(d), "admin.crt", readFile(t, c.Dir.Cert(name)))
		writeFile(t, string(d), "admin.key", readFile(t, c.Dir.Key(name)))
		cl, closeFn, err := clustermesh.DialAdmin(d, c.Cfg.AdminListen[0])
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Info(ctx, &adminapi.InfoRequest{})
		closeFn()
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("admin API with the %s certificate: %v, want PermissionDenied", name, err)
		}
	}
	d := clustermesh.Dir(t.TempDir())
	writeFile(t, string(d), clustermesh.CAFile, readFile(t, c.Dir.Path(clustermesh.CAFile)))
	writeFile(t, string(d), "admin.crt", readFile(t, other.Dir.Cert(clustermesh.UserAdmin)))
	writeFile(t, string(d), "admin.key", readFile(t, other.Dir.Key(clustermesh.UserAdmin)))
	cl, closeFn, err := clustermesh.DialAdmin(d, c.Cfg.AdminListen[0])
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, err := cl.Info(ctx, &adminapi.InfoRequest{}); err == nil {
		t.Error("admin API with another CA's admin certificate: answered")
	}
	if _, err := c.Admin(t).Info(ctx, &adminapi.InfoRequest{}); err != nil {
		t.Errorf("admin API with the admin certificate: %v", err)
	}
}

// TestAddRemote: AddRemote refuses incompatible clusters and credentials
// that are not the remote's; a good one publishes the record, idempotently.
func TestAddRemote(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c1 := apiservertest.Start(t, "c1", 1, apiservertest.Options{})
	c2 := apiservertest.Start(t, "c2", 2, apiservertest.Options{})
	c3 := apiservertest.Start(t, "c3", 2, apiservertest.Options{PodCIDR: "10.120.0.0/16"})
	info := func(c *apiservertest.Cluster) *adminapi.ClusterInfo {
		i, err := c.Admin(t).Info(ctx, &adminapi.InfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	sign := func(c *apiservertest.Cluster, remote string) *adminapi.Credentials {
		cr, err := c.Admin(t).SignRemote(ctx, &adminapi.SignRemoteRequest{Cluster: remote})
		if err != nil {
			t.Fatal(err)
		}
		return cr
	}
	add := func(to *apiservertest.Cluster, remote *adminapi.ClusterInfo, cr *adminapi.Credentials) (*adminapi.AddRemoteResponse, error) {
		return to.Admin(t).AddRemote(ctx, &adminapi.AddRemoteRequest{Remote: remote, Credentials: cr})
	}
	// c2's credentials for c1, signed by c2's CA.
	good := sign(c2, "c1")
	if _, err := add(c1, info(c2), sign(c3, "c1")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("credentials signed by another CA: %v, want InvalidArgument", err)
	}
	if _, err := add(c1, info(c2), sign(c2, "c7")); status.Code(err) != codes.InvalidArgument {
		t.Errorf("credentials of another user: %v, want InvalidArgument", err)
	}
	resp, err := add(c1, info(c2), good)
	if err != nil || !resp.Changed {
		t.Fatalf("add c2 to c1: %v %v", resp, err)
	}
	if resp, err := add(c1, info(c2), good); err != nil || resp.Changed {
		t.Fatalf("add c2 to c1 again: %v %v, want unchanged", resp, err)
	}
	// c3 has c2's id: refused while c2 is connected.
	if _, err := add(c1, info(c3), sign(c3, "c1")); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "already used by c2") {
		t.Errorf("a second cluster with id 2: %v, want FailedPrecondition naming c2", err)
	}
	src := c1.Store.NewClient(t)
	kv, err := src.Get(ctx, records.NewKeys(src.Prefix()).Remote("c2"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := records.NewKeys(src.Prefix()).DecodeRemote(kv.Key, kv.Value)
	if err != nil || r.ClientRef != c1.Dir.Remote("c2") {
		t.Fatalf("remote record %+v %v, want ClientRef %s", r, err, c1.Dir.Remote("c2"))
	}
	credKey := clustermesh.CredentialsKey(src.Prefix(), "c2")
	if kv, err := src.Get(ctx, credKey); err != nil {
		t.Fatalf("credentials for c2 in c1's store: %v", err)
	} else if cr, err := clustermesh.DecodeCredentials(kv.Key, kv.Value); err != nil || cr.Cert != good.CertPem {
		t.Fatalf("credentials for c2: %v", err)
	}
	list, err := c1.Admin(t).ListRemotes(ctx, &adminapi.ListRemotesRequest{})
	if err != nil || len(list.Remotes) != 1 || list.Remotes[0].Id != 2 {
		t.Fatalf("list remotes of c1: %v %v", list, err)
	}
	// Another apiserver of c1 (without the local info.json) knows c2's id
	// from the cluster store.
	if err := os.Remove(filepath.Join(c1.Dir.Remote("c2"), "info.json")); err != nil {
		t.Fatal(err)
	}
	if list, err := c1.Admin(t).ListRemotes(ctx, &adminapi.ListRemotesRequest{}); err != nil || len(list.Remotes) != 1 || list.Remotes[0].Id != 2 {
		t.Fatalf("list remotes of c1 without info.json: %v %v", list, err)
	}
	rm, err := c1.Admin(t).RemoveRemote(ctx, &adminapi.RemoveRemoteRequest{Cluster: "c2"})
	if err != nil || !rm.Existed {
		t.Fatalf("remove c2: %v %v", rm, err)
	}
	if _, err := src.Get(ctx, kv.Key); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("remote record after removal: %v", err)
	}
	if _, err := src.Get(ctx, credKey); !errors.Is(err, kvstore.ErrNotFound) {
		t.Fatalf("credentials after removal: %v", err)
	}
	if rm, err := c1.Admin(t).RemoveRemote(ctx, &adminapi.RemoveRemoteRequest{Cluster: "c2"}); err != nil || rm.Existed {
		t.Fatalf("remove c2 again: %v %v, want not existed", rm, err)
	}
	if _, err := c1.Admin(t).SignRemote(ctx, &adminapi.SignRemoteRequest{Cluster: "c1"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("sign for the cluster itself: %v", err)
	}
	if _, err := c1.Admin(t).SignRemote(ctx, &adminapi.SignRemoteRequest{Cluster: "Bad_Name"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("sign for a bad name: %v", err)
	}
}
