// Package flows is the agent's flow component: it reads the datapath's
// flow events, turns them into records with what the agent knows (the
// ipcache for pods, the identity cache for labels, the programmed services
// for backends), keeps them in the node's ring (package flow) and serves
// them: on the agent's unix socket (the Observer service, registered by
// the agent) and, with --flows-listen-address, on TCP with mutual TLS for
// weft-relay. It also registers the flow metrics.
package flows
