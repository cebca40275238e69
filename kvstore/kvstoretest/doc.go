// Package kvstoretest holds what tests need to run against real stores: the
// conformance suite every kvstore backend must pass (Run), servers to run it
// against (embedded etcd, a 3-member etcd cluster, a real Consul agent), a
// loopback TCP proxy that can cut a client off its store, and the child
// process used to prove that leased keys die with their process.
//
// Other packages' integration tests use StartEtcd, StartConsul and Servers to
// get real stores; an in-memory fake does not exist on purpose.
package kvstoretest
