package apiserver_test

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/weftnet/weft/clustermesh/apiserver"
	"github.com/weftnet/weft/state/records"
	"github.com/weftnet/weft/state/statetest"
)

// TestRemoteExports: c2's apiserver learns the services c1 exports (MCS-API)
// from c1's served store, and only those; with the credentials `connect`
// wrote missing from its directory (another apiserver of c2 connected, on
// another host) it takes them from c2's store.
func TestRemoteExports(t *testing.T) {
	ctx := statetest.Context(t, 2*time.Minute)
	c1, c2, _ := connected(t, nil)
	src := c1.Store.NewClient(t)
	sk := records.NewKeys(src.Prefix())
	svc := func(name string, exported bool) *records.Service {
		return &records.Service{Cluster: "c1", Namespace: "mcs", Name: name, Type: records.ServiceClusterIP,
			Global: exported, Exported: exported, Frontends: []netip.Addr{netip.MustParseAddr("10.96.0.9")},
			Ports: []records.ServicePort{{Port: 80, TargetPort: 8080, Protocol: records.ProtoTCP}}}
	}
	put(t, src, sk.Service("c1", "mcs", "web"), svc("web", true))
	put(t, src, sk.Service("c1", "mcs", "local"), svc("local", false))

	local := c2.Store.NewClient(t)
	kv, err := local.Get(ctx, records.NewKeys(local.Prefix()).Remote("c1"))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := records.NewKeys(local.Prefix()).DecodeRemote(kv.Key, kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rec.ClientRef); err != nil { // as on another host
		t.Fatal(err)
	}
	exported := apiserver.RemoteExportsForTest(ctx, local, t.TempDir(), "c2", statetest.Logger(t))
	statetest.Eventually(t, time.Minute, "c1's exported service seen by c2", func() error {
		got := exported()
		if len(got) != 1 || got[0].Name != "web" || got[0].Cluster != "c1" {
			return fmt.Errorf("exported %+v, want c1's mcs/web only", got)
		}
		return nil
	})
	if err := src.Delete(ctx, sk.Service("c1", "mcs", "web")); err != nil {
		t.Fatal(err)
	}
	statetest.Eventually(t, time.Minute, "an unexported service leaves the list", func() error {
		if got := exported(); len(got) != 0 {
			return fmt.Errorf("still %+v", got)
		}
		return nil
	})
}
