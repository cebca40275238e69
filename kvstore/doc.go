// Package kvstore is Weft's backend-neutral view of the distributed key-value
// store that agents share state through.
//
// It owns the small interfaces every consumer codes against (Reader, Writer,
// Watcher, Locker, and Client, which combines them; Transactor, the
// multi-key atomic transaction both backends also implement, for callers
// that type-assert it), the sentinel errors,
// the client configuration, key and value validation, and the client-side
// rate limiter. It depends on no backend: kvstore/etcd and kvstore/consul
// implement Client, kvstore/dial picks one from a Config, and
// kvstore/kvstoretest holds the conformance suite both must pass.
//
// Every key lives under the client's prefix (default "weft/"); a key outside
// it is refused with ErrOutsidePrefix before anything is sent.
package kvstore
