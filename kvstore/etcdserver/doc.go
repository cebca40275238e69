// Package etcdserver runs an etcd server inside the calling process
// (go.etcd.io/etcd/server/v3/embed): the default store of a standalone Weft
// cluster, and the real etcd that integration tests run against.
//
// It owns starting a member (alone or as part of a static cluster), waiting
// until it serves, and stopping it; client and peer URLs and TLS are options.
// It depends on nothing else in Weft.
package etcdserver
