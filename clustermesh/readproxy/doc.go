// Package readproxy is the read-only front through which remote clusters
// reach a cluster's served store. It speaks etcd's v3 gRPC API, so a
// remote agent's ordinary etcd client connects to it unchanged, and lets
// through only reads: KV/Range and Watch on the key ranges a remote may
// read (an etcd client authenticated by its certificate needs nothing
// else to stay connected). Every other call (Put, DeleteRange, Txn,
// Compact, every Lease, Cluster, Auth and Maintenance call, and any
// unknown service) is refused with PermissionDenied before it reaches the
// store. Each remote cluster is limited in connections, watches and
// request rate, and measured by Prometheus metrics labelled with its name.
//
// A remote is identified by the common name remote-<cluster> of its
// verified client certificate and admitted while it is a reader (the
// Readers function, re-read periodically, and Allow/Revoke for immediate
// changes). Allowed calls are forwarded on a connection the caller opens
// as that remote's own store user (Dial), so the store's role checks apply
// as well.
//
// It depends on etcd's API types (go.etcd.io/etcd/api/v3), gRPC,
// golang.org/x/time/rate and Prometheus, and on nothing else in Weft.
package readproxy
