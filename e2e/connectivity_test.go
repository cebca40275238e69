package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/e2e/connectivity"
	"github.com/weftnet/weft/testenv"
)

// TestConnectivity brings up three nodes in every cell of {tunnel, native}
// × {etcd, consul} and runs every connectivity scenario in it.
func TestConnectivity(t *testing.T) {
	for _, routing := range []string{testenv.RoutingTunnel, testenv.RoutingNative} {
		for _, store := range []string{testenv.StoreEtcd, testenv.StoreConsul} {
			t.Run(routing+"/"+store, func(t *testing.T) {
				spec := testenv.DefaultSpec()
				spec.Nodes, spec.Routing, spec.KVStore = 3, routing, store
				e := up(t, "cx-"+routing[:3]+"-"+store[:3], spec)
				runConnectivity(t, e)
			})
		}
	}
}

// runConnectivity runs every scenario and fails t with each failure's
// explanation.
func runConnectivity(t *testing.T, e *testenv.Env) connectivity.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out strings.Builder
	rep, err := connectivity.Run(ctx, e, connectivity.Options{Progress: &out})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("connectivity test: %v", err)
	}
	if len(rep.Results) < 20 {
		t.Errorf("connectivity test ran %d scenarios, expected at least 20 for 3 nodes", len(rep.Results))
	}
	// The agents serve the Policy and Services APIs: their scenarios must
	// not be skipped silently.
	for prefix, want := range map[string]int{"policy/": 4, "service/": 3} {
		n := 0
		for _, r := range rep.Results {
			if strings.HasPrefix(r.Name, prefix) {
				n++
			}
		}
		if n < want {
			t.Errorf("connectivity test ran %d %s scenarios, expected %d (does the agent still serve the API?)", n, prefix, want)
		}
	}
	for _, f := range rep.Failed() {
		t.Errorf("%s: %v", f.Name, f.Err)
	}
	return rep
}
