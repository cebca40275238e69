// Package consul implements kvstore.Client on a Consul cluster through its
// HTTP API (github.com/hashicorp/consul/api).
//
// It owns how Weft's backend contract maps onto Consul:
//
//   - Revision is a key's ModifyIndex. Every write is one transaction
//     (/v1/txn) that deletes the key and sets it again, so a write always
//     gets a new ModifyIndex and drops a lease binding it does not ask for,
//     as an etcd put does; conditions (create-only, compare-and-swap) are
//     check-not-exists / check-index operations in the same transaction.
//   - The lease is one Consul session per client (TTL Config.LeaseTTL,
//     behavior delete, lock delay 1ms), renewed every TTL/3. A leased write
//     sets the key with the "lock" verb carrying the value, so the key is
//     bound to the session atomically and deleted when the session ends.
//     When a renewal says the session is gone (expired, destroyed, or the
//     agent lost its state), LeaseLost's channel closes and the next leased
//     write or lock creates a fresh session.
//   - A distributed lock is the key kvstore.LockKey acquired by the session;
//     waiters block on a blocking query until the key is free. A
//     process-local mutex per key comes first, because Consul acquisition
//     is re-entrant per session and all goroutines of a client share one.
//     A write Guarded by a lock carries a check-session operation on the
//     lock key in its transaction, so it happens only while the lock is held.
//   - ListAndWatch re-lists the prefix with blocking queries and diffs each
//     listing against the last, so it needs no event log and converges after
//     agent restarts, including a dev agent that comes back empty.
//
// Values travel base64-encoded inside a transaction, and an agent refuses a
// request larger than limits.txn_max_req_len (512 KiB by default): with
// default agents, values above about 380 KiB fail with an error wrapping
// kvstore.ErrValueTooLarge even though Config.MaxValueSize allows 512 KiB.
// Agents serving Weft should set txn_max_req_len to at least 4/3 of
// MaxValueSize plus 1 KiB.
//
// The client talks to the first endpoint that answers with a leader at New;
// a Consul client normally talks to its local agent, which forwards to the
// servers. Empty Config.Token falls back to CONSUL_HTTP_TOKEN, as the api
// package does.
//
// It depends on kvstore for the interface, configuration, key checks and the
// rate limiter, and on nothing else of Weft.
package consul
