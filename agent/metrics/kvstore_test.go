package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/weftnet/weft/agent/metrics"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

// Store operations against a real (embedded) etcd are timed by outcome;
// answers such as "exists" or "not found" are not errors, a failed call is.
func TestInstrumentStoreCountsOperations(t *testing.T) {
	a, err := metrics.NewAgent(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	c := a.InstrumentStore(kvstoretest.StartEtcd(t).NewClient(t))
	ctx := context.Background()
	key := c.Prefix() + "metrics-test/k"
	if _, err := c.Create(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, key, []byte("v")); err == nil {
		t.Fatal("second create of the same key succeeded")
	}
	if _, err := c.Get(ctx, key+"-missing"); err == nil {
		t.Fatal("get of a missing key succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Get(cancelled, key); err == nil {
		t.Fatal("get with a cancelled context succeeded")
	}
	if got := testutil.CollectAndCount(a.StoreOps); got != 3 {
		t.Errorf("%d operation/outcome series, want 3 (create ok, get ok, get error)", got)
	}
	if got := testutil.ToFloat64(a.StoreErrors.WithLabelValues("get")); got != 1 {
		t.Errorf("get errors = %v, want 1 (the cancelled call)", got)
	}
	if got := testutil.ToFloat64(a.StoreErrors.WithLabelValues("create")); got != 0 {
		t.Errorf("create errors = %v, want 0 (an existing key is an answer)", got)
	}
}
