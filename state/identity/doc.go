// Package identity allocates security identities for label sets, globally
// and race-free across the agents that share one store, and collects the
// identities nobody references any more.
//
// Store layout (records, STABLE v1): the master key
// state/identities/v1/id/<id> holds the sorted label set; each node that
// uses an identity holds a reference state/identities/v1/value/<labels>/<node>
// bound to its lease. Allocation takes a distributed lock per label set,
// reuses the id that references or an existing master key name, else creates
// a new master key create-only with a free id of the cluster's range
// (cluster_id<<16 | n, n 256..65535), then writes the node's leased reference
// under the same lock (a lock-guarded write). Reserved label sets
// (reserved:host, …) map to the reserved identities without the store.
//
// An Allocator keeps local reference counts, deletes its reference on the
// last Release, and re-creates every reference under the new lease when its
// lease is lost. A Collector (run by the apiserver) deletes master keys of its
// own cluster's range that stayed unreferenced through a grace period, under
// the same per-label-set lock, so it never races an allocation.
//
// It depends on kvstore (the Client interface) and state/records.
package identity
