// Package endpoints owns a node's endpoints (pods): it picks each one's id
// and address from the node's pod CIDR, saves its state before the CNI
// plugin is answered, takes a leased reference to the identity of its
// labels, attaches it to the datapath, has the policy engine compute its
// policy, and publishes its ipcache entry. After a restart it restores the
// endpoints whose host veth still exists and cleans up the others.
//
// It depends on state/records and, through small interfaces, on the
// identity allocator, the ipcache publisher, the datapath and the policy
// engine (agent/policy), which is told of every endpoint change.
package endpoints
