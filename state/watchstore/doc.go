// Package watchstore mirrors one prefix of the store as a typed local view
// with change events: a generic Watcher that decodes every key with a
// records decoder, skips (and drops) malformed values, and reports synced
// once the initial listing is complete and, if configured, a synced canary
// key exists. When the client's lease is lost (the store may have lost
// state) it lists afresh and drops what the new listing does not confirm.
// Consumers (nodes, services) build on it; state/ipcache has its
// own specialised watcher keyed by address.
//
// It depends on kvstore (the Client interface).
package watchstore
