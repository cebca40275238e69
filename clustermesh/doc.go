// Package clustermesh holds what the weft-apiserver, the agent and the CLI
// share about connecting clusters: certificates (a CA per cluster, server
// and client certificates, ECDSA P-256 with crypto/x509), the layout of a
// cluster's clustermesh directory, the checks two clusters must pass before
// they are connected (unique name and id, same routing mode, disjoint pod
// CIDRs), and which remote entries an agent accepts (only under the remote
// cluster's own prefix and with identities in its range).
//
// The admin gRPC API of the weft-apiserver is in api/adminapi.
//
// It depends on state/records only.
package clustermesh
