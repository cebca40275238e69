// Package endpoints owns a node's endpoints (pods): it picks each one's id
// and address from the node's pod CIDR, saves its state before the CNI
// plugin is answered, takes a leased reference to the identity of its
// labels, attaches it to the datapath, has the policy engine compute its
// policy, and publishes its ipcache entry. After a restart it restores the
// endpoints whose host veth still exists and cleans up the others.
//
// In a cluster whose apiserver mirrors Kubernetes (package k8s), a pod the
// CNI plugin names (K8S_POD_NAMESPACE/K8S_POD_NAME) gets its labels from
// the mirrored pod record, with its namespace's labels as
// io.cilium.k8s.namespace.labels.<key> (k8s/podlabels, set by
// SetPodLabels); a pod not mirrored within the wait is refused as
// unavailable (the plugin asks the runtime to retry). FollowLabels keeps
// them current: when a pod's mirrored labels or its namespace's change,
// the endpoint gets the identity of the new labels (datapath, policy,
// ipcache) and releases the old one; a periodic comparison catches a
// change that raced with the pod's creation.
//
// It depends on state/records and, through small interfaces, on the
// identity allocator, the ipcache publisher, the datapath and the policy
// engine (agent/policy), which is told of every endpoint change.
package endpoints
