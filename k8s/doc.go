// Package k8s is the Kubernetes source of weft-apiserver: it mirrors a
// Kubernetes cluster's objects into the store records agents already
// consume, so that agents never talk to Kubernetes.
//
// Source.Run campaigns for a Lease (client-go leaderelection); only the
// holder mirrors, the other apiservers of the cluster stand by. A term of
// leadership starts shared informers for Namespaces, Pods, Services,
// EndpointSlices and NetworkPolicies, and dynamic informers for
// CiliumNetworkPolicies and CiliumClusterwideNetworkPolicies when their
// CRDs (crds/) are installed. Once every cache has synced, each store
// prefix is reconciled against the caches: records that differ are
// written, records this source wrote whose object vanished are deleted
// (records written by the CLI are left alone), and the kind's
// synced/<cluster>/k8s-<kind> marker is written. After that, informer
// events drive a rate-limited work queue that rewrites one record at a
// time, only when its value changes, so a new leader or a restart writes
// nothing that is already right.
//
//	Namespace                         → state/namespaces/v1/<cluster>/<name>
//	Pod                               → state/pods/v1/<cluster>/<ns>/<name>
//	Service (+ its EndpointSlices)    → state/services/v1/<cluster>/<ns>/<name>
//	NetworkPolicy, CiliumNetworkPolicy → state/policies/v1/<ns>/<name>
//	CiliumClusterwideNetworkPolicy    → state/policies/v1/_clusterwide/<name>
//
// An object that cannot be mirrored (an invalid service.cilium.io
// annotation, a policy the datapath cannot enforce, an EndpointSlice of an
// unknown Service, a Pod with more labels than an identity holds) changes
// nothing in the store: it gets a Warning Event and is listed in
// Status().Problems until it is fixed or deleted.
//
// It depends on client-go, state/records, services (Service conversion and
// validation), policy (document validation) and kvstore.
package k8s
