package state

import (
	"testing"
	"time"

	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/kvstore/kvstoretest"
)

// eachBackend runs fn as sub-benchmarks named after the backend, etcd first
// (the baseline column of bench/benchtable).
func eachBackend(b *testing.B, fn func(b *testing.B, s kvstoretest.Server)) {
	for _, be := range []struct {
		name  string
		start func(testing.TB) kvstoretest.Server
	}{{"etcd", kvstoretest.StartEtcd}, {"consul", kvstoretest.StartConsul}} {
		b.Run(be.name, func(b *testing.B) { fn(b, be.start(b)) })
	}
}

// benchClient has no rate limit and a lease TTL of at least 10 s, so that a
// busy machine does not expire leases (and locks) mid-run.
func benchClient(c *kvstore.Config) {
	c.RateLimit = kvstore.RateLimit{}
	c.LeaseTTL = max(c.LeaseTTL, 10*time.Second)
}
