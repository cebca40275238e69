// Package podlabels gives an agent the Kubernetes labels of a pod the CNI
// plugin names (K8S_POD_NAMESPACE/K8S_POD_NAME), from the records the
// apiserver's Kubernetes source mirrors into the store: the pod's own
// labels, plus its namespace's labels as
// io.cilium.k8s.namespace.labels.<key> (as Cilium adds them, so policies
// written for Cilium select the same pods).
//
// It reads only the store (agents never talk to Kubernetes) and depends
// on kvstore and state/records, not on client-go.
package podlabels
