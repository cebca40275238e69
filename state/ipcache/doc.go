// Package ipcache shares which identity every pod address has, and behind
// which node it lives, through the store.
//
// A Publisher turns an agent's local endpoints into lease-bound entries
// state/ip/v1/<cluster>/<ip> (records.IPCacheEntry, STABLE v1) through the
// agent's sync store, so entries vanish with a dead agent and come back by
// themselves after a lost lease. A Watcher keeps a consistent local view of
// one cluster's entries with change events: it applies the list-and-watch
// stream, drains entries restored from a previous run (e.g. a pinned BPF map)
// that the store no longer holds, and reports synced only after the initial
// listing is complete and the cluster's synced/<cluster>/ip canary exists.
// When its client's lease is lost it lists afresh and drains what the new
// listing does not confirm (a restarted Consul agent comes back empty, and
// a blocking query from before may not notice).
//
// It depends on kvstore (the Client interface) and state/records.
package ipcache
