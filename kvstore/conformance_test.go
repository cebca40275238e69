package kvstore_test

import (
	"testing"

	"github.com/weftnet/weft/kvstore/kvstoretest"
)

func TestMain(m *testing.M) { kvstoretest.Main(m) }

// TestConformance runs the one conformance suite against every backend:
// embedded etcd, a 3-member etcd cluster, and a real Consul agent.
func TestConformance(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		kvstoretest.Run(t, kvstoretest.StartEtcd(t))
	})
	t.Run("etcd-cluster", func(t *testing.T) {
		kvstoretest.Run(t, kvstoretest.StartEtcdCluster(t, 3))
	})
	t.Run("consul", func(t *testing.T) {
		kvstoretest.Run(t, kvstoretest.StartConsul(t))
	})
}
