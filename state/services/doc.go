// Package services keeps service records state/services/v1/<cluster>/<ns>/<name>
// (records.Service, STABLE v1) in the store.
//
// Store is the standalone source (the weft CLI): create, update, get, list
// and delete services with compare-and-swap, so concurrent editors never
// lose each other's changes. The service.cilium.io global/shared/affinity
// settings and session affinity are stored as given.
//
// Controller does what the Kubernetes EndpointSlice controller does for
// services with a selector: it watches the cluster's ipcache entries, the
// identities (for each address's labels) and the nodes (host IP → node
// name), and sets the backends of every service with a selector to the
// addresses, anywhere in the cluster, whose labels match the selector in the
// service's namespace, one backend per service port (target port). Services
// without a selector keep the backends they were given.
//
// It depends on kvstore, state/records, state/ipcache, state/nodes and
// state/watchstore.
package services
