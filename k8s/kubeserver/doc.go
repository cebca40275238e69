// Package kubeserver runs a real Kubernetes control plane for tests and
// testenv: a standalone etcd 3.6 and a kube-apiserver of the pinned release
// (both from internal/toolcache), on loopback, with its own CA, a serving
// certificate, a service-account signing key and one static admin token.
// There is no controller manager, scheduler or kubelet: objects are stored
// and served, nothing reconciles them unless the caller does.
//
// Start returns a Server whose RESTConfig and Kubeconfig reach the API as
// the admin user (group system:masters). Processes die with the caller
// (PR_SET_PDEATHSIG) and Stop removes nothing but what Start created in
// Options.Dir.
//
// It depends on internal/toolcache and client-go's rest and clientcmd.
package kubeserver
