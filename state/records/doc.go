// Package records is Weft's shared data model in the store: the key layout
// and the record types that the agent, the apiserver, clustermesh and the CLI
// all read and write.
//
// STABLE (v1): the key layout (keys.go) and the JSON record formats in this
// package are versioned. Changing a key or the meaning of a field breaks
// upgrades and mixed-version clusters; add a new version instead (a new "v2"
// path segment for keys, a new "v" value for records).
//
// Every record carries a schema version ("v": 1). Decode functions reject a
// value that is malformed JSON, larger than its kind's limit, of another
// schema version, invalid, or inconsistent with the key it was read from; the
// error names the key and wraps ErrInvalid.
//
// Unknown JSON fields are ignored, so a newer writer may add optional fields
// within v1 without breaking older readers.
//
// It depends only on the standard library and k8s.io/apimachinery's name
// validation; keys are built from a store prefix (kvstore.Client.Prefix()),
// never a hard-coded one.
package records
