// Package syncstore keeps the keys an agent owns in the store equal to the
// agent's desired local state: node record, ipcache entries, synced markers.
//
// Callers set desired keys with Upsert and Delete, which never block; Run
// writes them lease-bound (kvstore.Leased) in the background with a few
// workers, a client-side rate limit and capped exponential backoff on
// errors. When the client's lease/session is lost every owned key vanishes
// from the store; Run notices (kvstore.Client.LeaseLost) and re-creates all
// of them under the new lease, so the caller never sees the loss.
//
// Markers registered with MarkSynced are written once everything desired at
// that moment has been written: the synced/<cluster>/<kind> canary that
// watchers wait for.
//
// It depends on kvstore (the Client interface) and golang.org/x/time/rate.
package syncstore
