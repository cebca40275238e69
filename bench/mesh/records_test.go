package mesh

import (
	"fmt"
	"net/netip"

	"github.com/weftnet/weft/state/records"
)

// The synthetic remote clusters: r<id> with cluster id id (1..64), pod
// pool 10.<id>.0.0/16 cut into one /26 per node, 30 endpoints per node at
// offsets 1..30 or, once churned, 33..62 of the node's /26; node underlay
// addresses in 100.64.0.0/10, unique over the mesh.
const (
	nodesPerCluster = 1000
	epsPerNode      = 30
	epsPerCluster   = nodesPerCluster * epsPerNode
	identities      = 100 // label sets per cluster
	podMaskSize     = 26
	// The agent's own cluster.
	localName = "mesh"
	localID   = 200
	localPool = "10.200.0.0/16"
)

func clusterName(id int) string { return fmt.Sprintf("r%d", id) }
func podPool(id int) string     { return fmt.Sprintf("10.%d.0.0/16", id) }
func nodeName(j int) string     { return fmt.Sprintf("node-%04d", j) }

func underlay(id, j int) netip.Addr {
	v := uint32(100)<<24 | uint32(64)<<16 | uint32(id)<<10 | uint32(j)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func podCIDR(id, j int) netip.Prefix {
	off := j * 64
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(id), byte(off >> 8), byte(off)}), podMaskSize)
}

// endpointIP is endpoint s of node j; flipped is where it lives after an
// odd number of churns.
func endpointIP(id, j, s int, flipped bool) netip.Addr {
	a := podCIDR(id, j).Addr().As4()
	a[3] += byte(1 + s)
	if flipped {
		a[3] += 32
	}
	return netip.AddrFrom4(a)
}

func identityOf(id, j, s int) records.ID {
	return records.ClusterIdentity(uint32(id), records.MinClusterLocal+uint32((j*epsPerNode+s)%identities))
}

func labelsOf(id, k int) records.Labels {
	return records.MustParseLabels(fmt.Sprintf("k8s:app=app-%d", k), "k8s:io.kubernetes.pod.namespace=default",
		"k8s:io.cilium.k8s.policy.cluster="+clusterName(id))
}

func nodeRecord(id, j int) records.Node {
	return records.Node{Name: nodeName(j), Cluster: clusterName(id), ClusterID: uint32(id),
		Underlay: []netip.Addr{underlay(id, j)}, PodCIDRs: []netip.Prefix{podCIDR(id, j)}}
}

func endpointRecord(id, j, s int, flipped bool, pod string) records.IPCacheEntry {
	return records.IPCacheEntry{IP: endpointIP(id, j, s, flipped), Identity: identityOf(id, j, s),
		HostIP: underlay(id, j), Namespace: "default", Pod: pod}
}
