// Package memstore is an in-memory kvstore.Client for pure logic tests of the
// state packages. It is not a backend: integration tests run against real
// etcd and Consul through kvstore/kvstoretest. It models leases (ExpireLease
// drops a client's leased keys like a dead session), locks bound to them,
// lock-guarded writes and list-and-watch.
package memstore
