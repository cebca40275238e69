package clustermesh

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
	"github.com/weftnet/weft/state/records"
)

// TestRemoteClusterChecks: a remote is refused when its cluster-config
// has this cluster's id, another remote's id, or another routing mode.
func TestRemoteClusterChecks(t *testing.T) {
	store := kvstoretest.StartEtcd(t)
	client := store.NewClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := Config{Node: "n1", StateDir: t.TempDir(), Cluster: records.ClusterConfig{Name: "c1", ID: 1, Routing: records.RoutingTunnel,
		PodCIDRs: []netip.Prefix{netip.MustParsePrefix("10.100.0.0/16")}, PodCIDRMaskSize: 24}}
	m := New(client, records.NewKeys(client.Prefix()), cfg, nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	other := newRemoteCluster(m, "c3")
	other.cfg = records.ClusterConfig{Name: "c3", ID: 3}
	m.remotes["c3"] = other
	keys := records.NewKeys(client.Prefix())
	cases := []struct {
		name string
		cc   records.ClusterConfig
		want string
	}{
		{"ok", records.ClusterConfig{ID: 2, Routing: records.RoutingTunnel}, ""},
		{"local id", records.ClusterConfig{ID: 1, Routing: records.RoutingTunnel}, "the id of this cluster c1"},
		{"another remote's id", records.ClusterConfig{ID: 3, Routing: records.RoutingTunnel}, "already used by remote c3"},
		{"routing", records.ClusterConfig{ID: 2, Routing: records.RoutingNative}, "uses native routing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cc := tc.cc
			cc.Name, cc.PodCIDRs, cc.PodCIDRMaskSize = "c2", []netip.Prefix{netip.MustParsePrefix("10.101.0.0/16")}, 24
			key := keys.ClusterConfig("c2")
			val, err := records.Encode(key, &cc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := client.Update(ctx, key, val); err != nil {
				t.Fatal(err)
			}
			r := newRemoteCluster(m, "c2")
			r.keys = records.NewKeys(client.Prefix())
			_, err = r.checkConfig(ctx, client)
			if tc.want == "" && err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRemoteStoreConfig: the credentials come from the record's clientRef,
// else from the local store; missing ones say how to get them.
func TestRemoteStoreConfig(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := kvstoretest.StartEtcd(t).NewClient(t)
	dir := t.TempDir()
	m := New(client, records.NewKeys(client.Prefix()), Config{Node: "n1", StateDir: filepath.Join(dir, "state")}, nil, nil, nil, nil, slog.New(slog.DiscardHandler))
	r := newRemoteCluster(m, "c2")
	rec := records.Remote{Cluster: "c2", Endpoints: []string{"https://10.0.0.2:2381"}, CA: "PEM", ClientRef: filepath.Join(dir, "ref")}
	if _, err := r.storeConfig(ctx, rec); err == nil || !strings.Contains(err.Error(), "weft clustermesh connect") {
		t.Fatalf("missing credentials: %v", err)
	}

	// From the local store.
	val, err := clustermesh.EncodeCredentials(clustermesh.StoredCredentials{Cluster: "c2", CA: "CA", Cert: "CERT", Key: "KEY"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Update(ctx, clustermesh.CredentialsKey(client.Prefix(), "c2"), val); err != nil {
		t.Fatal(err)
	}
	cfg, err := r.storeConfig(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{cfg.TLS.CAFile: "CA", cfg.TLS.CertFile: "CERT", cfg.TLS.KeyFile: "KEY"} {
		if b, err := os.ReadFile(file); err != nil || string(b) != want || !strings.HasPrefix(file, m.cfg.StateDir) {
			t.Fatalf("%s: %q %v, want %q in the state dir", file, b, err, want)
		}
	}

	// From the clientRef directory, with the record's CA.
	if err := os.MkdirAll(rec.ClientRef, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"client.crt", "client.key"} {
		if err := os.WriteFile(filepath.Join(rec.ClientRef, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err = r.storeConfig(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Prefix != kvstore.DefaultPrefix || cfg.TLS.CertFile != filepath.Join(rec.ClientRef, "client.crt") {
		t.Fatalf("config %+v", cfg)
	}
	if b, err := os.ReadFile(cfg.TLS.CAFile); err != nil || string(b) != "PEM" {
		t.Fatalf("CA file %s: %q %v", cfg.TLS.CAFile, b, err)
	}
}

func TestInPool(t *testing.T) {
	pool := []netip.Prefix{netip.MustParsePrefix("10.101.0.0/16")}
	for _, tc := range []struct {
		p    string
		want bool
	}{{"10.101.3.0/24", true}, {"10.101.0.0/16", true}, {"10.0.0.0/8", false}, {"10.100.3.0/24", false}} {
		if got := inPool(pool, netip.MustParsePrefix(tc.p)); got != tc.want {
			t.Errorf("inPool(%s) = %v", tc.p, got)
		}
	}
}

// TestStatusWarnsOfRemoteWithoutNodes: a remote that is connected and
// synced but announces no node is a warning on its line, and its refused
// records are counted by reason.
func TestStatusWarnsOfRemoteWithoutNodes(t *testing.T) {
	m := &Mesh{log: slog.New(slog.DiscardHandler)}
	r := newRemoteCluster(m, "c2")
	r.connected = true
	for _, k := range append(remoteKinds, records.KindServices) {
		r.listed[k] = true
	}
	st := r.status()
	if !st.Synced || !strings.Contains(st.Error, "announces no node") {
		t.Errorf("synced remote without nodes: %+v, want a warning that it announces no node", st)
	}
	r.nodes["k"] = records.Node{Name: "n1"}
	r.rejected[RejectPodCIDR] = 2
	r.rejected[RejectMalformed] = 1
	st = r.status()
	if st.Error != "rejected 3 records (malformed 1, pod-cidr 2)" || st.Rejected[RejectPodCIDR] != 2 {
		t.Errorf("remote with rejections: %q %v", st.Error, st.Rejected)
	}
}
