// Package endpointip hands out endpoint (pod) addresses from the node's pod
// CIDR and persists every allocation on local disk before returning it, so
// an agent restart never hands out an address that is still in use.
//
// The network address, the gateway (the first host address, which the
// agent puts on the host side) and, for IPv4, the broadcast address are
// never handed out. Addresses are taken round-robin from a persisted cursor,
// so a just-released address is not reused at once.
//
// State file, STABLE (v1): <dir>/<cidr-key>.json (cidr-key as in
// records.CIDRKey, e.g. 10.100.1.0-24.json) holding
// {"v":1,"cidr":"10.100.1.0/24","next":"10.100.1.9","owners":{"10.100.1.7":"<owner>"}}
// written to a temporary file, fsynced and renamed. A lock file (flock)
// keeps a second process off the same state.
//
// It depends only on the standard library and state/records.
package endpointip
