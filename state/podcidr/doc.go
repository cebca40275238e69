// Package podcidr hands each node of a cluster a pod CIDR from the cluster's
// pool (a list of prefixes cut into subnets of a configured mask size, e.g.
// 10.100.0.0/16 into /24s).
//
// Allocations live at ipam/v1/<cluster>/<cidr> (records, STABLE v1) and are
// taken create-only by compare-and-swap, so nodes racing for CIDRs always get
// distinct ones. They are not lease-bound: a node that restarts finds its own
// allocation and gets the same CIDR back. Free releases a deleted node's
// CIDRs; a Reclaimer (run by the apiserver) frees CIDRs whose node record has
// been absent for a grace period.
//
// It depends on kvstore (the Client interface) and state/records.
package podcidr
