// Package gc reclaims what dead nodes leave in a cluster's store: identity
// master keys unreferenced past a grace period (state/identity's
// collector) and the pod CIDRs of nodes whose record has been gone past
// another. It runs in every deployment shape: whoever holds the cluster's
// collector lock (the store lock gc/<cluster>) collects, every
// weft-apiserver and every agent competes for it, so exactly one of them
// collects at a time, and a cluster without an apiserver still does.
//
// Each pass is recorded in the store at gc/v1/<cluster> (JSON, v1; not in
// DESIGN.md's table yet): who collected, when, and the identities and pod
// CIDRs last freed, so any node's status can show it.
//
// It depends on kvstore, state/records, state/identity and state/podcidr.
package gc
