// Package services owns service definitions as users give them: the
// `weft service` flags and Kubernetes Service manifests are parsed into a
// Spec, validated (every error names the field, the value and what is
// accepted), and turned into records.Service by the Allocator, which takes
// a ClusterIP from the service CIDR and NodePorts from 30000–32767 under a
// per-cluster store lock. Backends computes a service's backends from the
// cluster's pods (ipcache entries with their identity labels), as the
// Kubernetes EndpointSlice controller would, and Frontends expands a
// service into the per-node frontends the datapath programs.
//
// FromService reads a k8s.io/api core/v1 Service, strictly for manifests
// (ParseManifest decodes into that type) and leniently for Services the
// apiserver's Kubernetes source mirrors. FromAPI and ToAPI convert to and
// from the agent API's ServiceSpec.
// It depends on state/records (the STABLE service record), kvstore and the
// agentapi messages; it knows nothing about the datapath.
package services
