// Package clustermesh is the agent's side of the mesh: it follows
// clustermesh/v1/remotes/ in the local store and keeps one mTLS connection
// per remote cluster's weft-apiserver. A remote's nodes, ipcache entries and
// identities join the node table, the BPF ipcache and the policy engine,
// filtered by the remote's prefix, identity range and pod pool; its service
// records and pods feed global services (agent/services). A remote's state
// is kept through outages and agent restarts until it has been listed
// again; a remote whose record is deleted is drained.
//
// Mesh-wide pieces shared with the CLI and weft-apiserver (certificates,
// credentials, enable/connect) are the top-level package clustermesh.
package clustermesh
