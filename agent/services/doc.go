// Package services is the agent's service component: it programs the
// node's LB maps from the cluster's service records (selector services get
// the cluster's pods as backends, global services merge the shared backends
// of connected clusters, honouring affinity), adds local endpoints' port
// mappings as HostPort frontends, and serves agentapi.ServicesServer, which
// validates and allocates service definitions.
//
// The definitions themselves (parsing, allocation, backend selection) are
// the top-level package services; this one applies them on a node. It
// depends on kvstore, state/records, state/watchstore, agent/endpoints (the
// endpoint type) and, through small interfaces, on the datapath, the
// ipcache watcher and the node table.
package services
