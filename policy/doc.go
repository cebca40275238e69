// Package policy turns network policy documents into per-endpoint datapath
// policy. It parses CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy
// (cilium.io/v2) and Kubernetes NetworkPolicy (networking.k8s.io/v1) YAML
// strictly into a validated model (Parse), keeps the policies of a node in
// a Repository, keeps the identities they can select in a Universe whose
// selector cache is updated incrementally as identities come and go, and
// computes an endpoint's datapath.Policy (Repository.Compute).
//
// Semantics follow Cilium's: label keys carry a source (k8s:app, any:app,
// reserved:host); a namespaced policy's endpoint selector and peer
// selectors are limited to its namespace unless they name the namespace
// label k8s:io.kubernetes.pod.namespace; a direction is enforced (default
// deny) once a rule selecting the endpoint has rules in that direction;
// deny wins over allow. CIDR rules select node-local CIDR identities
// (CIDRIdentityBase | n) that the agent writes into the ipcache as LPM
// prefixes; an except prefix gets its own identity, so the longest-prefix
// match leaves it unselected.
//
// It is pure logic: it depends on state/records (labels, identities) and
// datapath (the Policy and Rule types it produces), never on the store or
// BPF.
package policy
