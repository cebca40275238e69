// Package etcd implements kvstore.Client on etcd v3
// (go.etcd.io/etcd/client/v3): revisions are mod revisions, leased writes
// are bound to one lease per client kept alive by a concurrency.Session,
// locks are concurrency.Mutex values, and lock-guarded writes are single
// transactions that compare the lock owner's key.
//
// It depends on kvstore only.
package etcd
