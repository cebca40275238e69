package kvstoretest

import (
	"testing"

	"github.com/weftnet/weft/kvstore"
)

// Server is a running store for tests.
type Server interface {
	// Name is the subtest name: "etcd", "etcd-cluster", "consul".
	Name() string
	// Config reaches the server: backend, endpoints, prefix "weft/", the
	// shortest lease TTL the backend allows, no rate limit.
	Config() kvstore.Config
	// NewClient opens a client with Config (changed by mods); it is closed
	// when the test ends.
	NewClient(t testing.TB, mods ...func(*kvstore.Config)) kvstore.Client
	// Restart stops the server and starts it again on the same endpoints.
	Restart(t testing.TB)
}

// LeaseKiller is a Server that can end a client's lease/session from the
// outside, as an expiry or an operator would.
type LeaseKiller interface {
	KillLease(t testing.TB, c kvstore.Client)
}

// Compacter is a Server with a revision history that can be compacted.
type Compacter interface {
	Compact(t testing.TB)
}

// MemberStopper is a multi-member Server that can lose a member.
type MemberStopper interface {
	StopMember(t testing.TB, i int)
}

// Servers starts one server of each backend, for tests that must hold on
// both etcd and Consul.
func Servers(t testing.TB) []Server {
	return []Server{StartEtcd(t), StartConsul(t)}
}
