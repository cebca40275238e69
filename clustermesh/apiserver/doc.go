// Package apiserver is the weft-apiserver: one (or several) per cluster. It
// publishes the cluster to other clusters.
//
// It runs an embedded etcd (the "served store") over mutual TLS with etcd
// authentication on: the apiserver itself is user root, local agents user
// agent (read-write on the prefix), every remote cluster a user
// remote-<cluster> whose role reads only this cluster's prefixes. Users are
// taken from the client certificate's common name (etcd's CN-based auth).
// Remote clusters do not reach the served etcd: their certificates are
// signed by the remote CA, which only the read-only front (readproxy, on
// --remote-listen) trusts; the front lets through reads only and forwards
// them as the remote's user.
// The served store is either the cluster's own store (--embedded-store) or a
// mirror of it: the apiserver lists and watches the cluster store (any etcd
// or Consul, --kvstore-*) and copies this cluster's nodes, ipcache entries,
// identities and services into it, then writes the synced/<cluster>/<kind>
// canaries.
//
// It also publishes cluster-config/<cluster>, refreshes the heartbeat,
// serves the admin gRPC API (clustermesh/adminapi: cluster info, signing
// remote clusters' client certificates, adding and removing remotes), runs
// the cluster's collector (clustermesh/gc: identities, pod CIDRs of nodes
// gone for longer than a grace period) while it holds the collector lock,
// and serves Prometheus metrics.
//
// With --kubernetes (in-cluster config) or --kubeconfig it also runs the
// Kubernetes source (package k8s), which mirrors the Kubernetes cluster's
// objects into the cluster store; the services canary then waits for the
// source's first full list of Services. The admin API's KubernetesStatus
// reports the source.
//
// It depends on kvstore, kvstore/etcdserver, state/records, clustermesh,
// clustermesh/gc, clustermesh/readproxy and k8s.
package apiserver
