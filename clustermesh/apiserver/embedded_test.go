package apiserver_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/clustermesh/apiserver/apiservertest"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestEmbeddedStore: with --embedded-store the served etcd is the
// cluster's store: local agents write with the agent certificate, remote
// clusters read, and the canaries exist from the start.
func TestEmbeddedStore(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c := apiservertest.Start(t, "c1", 1, apiservertest.Options{Modify: func(cfg *apiserver.Config) { cfg.EmbeddedStore = true }})
	agent := served(t, c, c.Dir.Cert(clustermesh.UserAgent), c.Dir.Key(clustermesh.UserAgent))
	k := records.NewKeys(agent.Prefix())
	put(t, agent, k.Node("c1", "n1"), &records.Node{Name: "n1", Cluster: "c1", ClusterID: 1, Underlay: []netip.Addr{netip.MustParseAddr("192.168.1.1")}})
	if _, err := agent.Get(ctx, k.ClusterConfig("c1")); err != nil {
		t.Fatalf("cluster-config in the embedded store: %v", err)
	}
	cert, key := remoteCreds(t, c, "c2")
	remote := servedWith(t, c.RemoteConfig(cert, key))
	statetest.Eventually(t, time.Minute, "the remote reads the node and the canaries", func() error {
		kvs, err := remote.List(ctx, k.NodesPrefix("c1"))
		if err != nil || len(kvs) != 1 {
			return fmt.Errorf("nodes %d, %v", len(kvs), err)
		}
		for _, kind := range []string{records.KindNodes, records.KindIPCache, records.KindIdentities} {
			if _, err := remote.Get(ctx, k.Synced("c1", kind)); err != nil {
				return err
			}
		}
		return nil
	})
	if _, err := remote.Update(ctx, k.Node("c1", "n2"), []byte("{}")); !denied(err) {
		t.Fatalf("remote write into the embedded store: %v, want permission denied", err)
	}
}
