package records

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Key layout, STABLE (v1). Every key starts with the store prefix (default
// "weft/", always taken from the client) followed by:
//
//	cluster-config/<cluster>                     ClusterConfig, written by the apiserver
//	state/nodes/v1/<cluster>/<node>              Node, leased by the node's agent
//	state/identities/v1/id/<id>                  Identity (master key), collected when unreferenced
//	state/identities/v1/value/<labels>/<node>    IdentityRef, leased by the node's agent
//	state/ip/v1/<cluster>/<ip>                   IPCacheEntry, leased by the owning agent
//	state/services/v1/<cluster>/<ns>/<name>      Service, owned by its source
//	state/policies/v1/<ns>/<name>                PolicyRef, owned by its source
//	state/pods/v1/<cluster>/<ns>/<name>          Pod, owned by the Kubernetes source
//	state/namespaces/v1/<cluster>/<name>         Namespace, owned by the Kubernetes source
//	state/l7lb/v1/<cluster>/<ns>/<name>          L7LoadBalancingRef, owned by its source (l7lb.go)
//	state/ingresses/v1/<cluster>/<ns>/<name>     Ingress, owned by its source (ingress.go)
//	state/ingress-secrets/v1/<cluster>/<ns>/<name> IngressSecret, owned by its source
//	ipam/v1/<cluster>/<cidr>                     PodCIDR, taken by compare-and-swap
//	clustermesh/v1/remotes/<cluster>             Remote
//	synced/<cluster>/<kind>                      Synced, written after a full list of kind
//
// <cidr> is written with its "/" replaced by "-": 10.100.1.0/24 is
// "10.100.1.0-24", fd00:1::/64 is "fd00:1::-64" (see CIDRKey).
// <labels> is the sorted label set encoded by Labels.KeySegment.
// <ip> is the canonical text form of the address (netip.Addr.String).
// <id> is the identity in decimal.
const (
	clusterConfigDir = "cluster-config/"
	nodesDir         = "state/nodes/v1/"
	identityIDDir    = "state/identities/v1/id/"
	identityValueDir = "state/identities/v1/value/"
	ipcacheDir       = "state/ip/v1/"
	servicesDir      = "state/services/v1/"
	policiesDir      = "state/policies/v1/"
	podsDir          = "state/pods/v1/"
	namespacesDir    = "state/namespaces/v1/"
	ipamDir          = "ipam/v1/"
	remotesDir       = "clustermesh/v1/remotes/"
	syncedDir        = "synced/"
	k8sDir           = "state/k8s/v1/"
)

// Kinds announced under synced/<cluster>/<kind>.
const (
	KindNodes      = "nodes"
	KindIdentities = "identities"
	KindIPCache    = "ip"
	KindServices   = "services"
	// Written by the apiserver's Kubernetes source once its first full
	// list of the Kubernetes kinds behind each prefix is in the store.
	KindK8sNamespaces = "k8s-namespaces"
	KindK8sPods       = "k8s-pods"
	KindK8sServices   = "k8s-services" // Services and EndpointSlices
	KindK8sPolicies   = "k8s-policies" // NetworkPolicies, Cilium(Clusterwide)NetworkPolicies
)

// Keys builds and parses keys under one store prefix.
type Keys struct{ prefix string }

// NewKeys returns the layout under prefix (kvstore.Client.Prefix()).
func NewKeys(prefix string) Keys { return Keys{prefix: prefix} }

// Prefix is the store prefix the keys live under.
func (k Keys) Prefix() string { return k.prefix }

// ClusterConfig is cluster-config/<cluster>.
func (k Keys) ClusterConfig(cluster string) string { return k.prefix + clusterConfigDir + cluster }

// NodesPrefix is state/nodes/v1/<cluster>/.
func (k Keys) NodesPrefix(cluster string) string { return k.prefix + nodesDir + cluster + "/" }

// Node is state/nodes/v1/<cluster>/<node>.
func (k Keys) Node(cluster, node string) string { return k.NodesPrefix(cluster) + node }

// IdentitiesPrefix is state/identities/v1/id/.
func (k Keys) IdentitiesPrefix() string { return k.prefix + identityIDDir }

// Identity is state/identities/v1/id/<id>.
func (k Keys) Identity(id ID) string {
	return k.IdentitiesPrefix() + strconv.FormatUint(uint64(id), 10)
}

// IdentityRefsPrefix is state/identities/v1/value/ (all references).
func (k Keys) IdentityRefsPrefix() string { return k.prefix + identityValueDir }

// IdentityRefsOf is state/identities/v1/value/<labels>/: the references to one label set.
func (k Keys) IdentityRefsOf(l Labels) string { return k.IdentityRefsPrefix() + l.KeySegment() + "/" }

// IdentityRef is state/identities/v1/value/<labels>/<node>.
func (k Keys) IdentityRef(l Labels, node string) string { return k.IdentityRefsOf(l) + node }

// IPCachePrefix is state/ip/v1/<cluster>/.
func (k Keys) IPCachePrefix(cluster string) string { return k.prefix + ipcacheDir + cluster + "/" }

// IPCache is state/ip/v1/<cluster>/<ip>.
func (k Keys) IPCache(cluster string, ip netip.Addr) string {
	return k.IPCachePrefix(cluster) + ip.String()
}

// ServicesPrefix is state/services/v1/<cluster>/.
func (k Keys) ServicesPrefix(cluster string) string { return k.prefix + servicesDir + cluster + "/" }

// Service is state/services/v1/<cluster>/<ns>/<name>.
func (k Keys) Service(cluster, ns, name string) string {
	return k.ServicesPrefix(cluster) + ns + "/" + name
}

// PoliciesPrefix is state/policies/v1/.
func (k Keys) PoliciesPrefix() string { return k.prefix + policiesDir }

// Policy is state/policies/v1/<ns>/<name>.
func (k Keys) Policy(ns, name string) string { return k.PoliciesPrefix() + ns + "/" + name }

// PodsPrefix is state/pods/v1/<cluster>/.
func (k Keys) PodsPrefix(cluster string) string { return k.prefix + podsDir + cluster + "/" }

// Pod is state/pods/v1/<cluster>/<ns>/<name>.
func (k Keys) Pod(cluster, ns, name string) string { return k.PodsPrefix(cluster) + ns + "/" + name }

// NamespacesPrefix is state/namespaces/v1/<cluster>/.
func (k Keys) NamespacesPrefix(cluster string) string {
	return k.prefix + namespacesDir + cluster + "/"
}

// Namespace is state/namespaces/v1/<cluster>/<name>.
func (k Keys) Namespace(cluster, name string) string { return k.NamespacesPrefix(cluster) + name }

// IPAMPrefix is ipam/v1/<cluster>/.
func (k Keys) IPAMPrefix(cluster string) string { return k.prefix + ipamDir + cluster + "/" }

// IPAM is ipam/v1/<cluster>/<cidr>.
func (k Keys) IPAM(cluster string, cidr netip.Prefix) string {
	return k.IPAMPrefix(cluster) + CIDRKey(cidr)
}

// Remote is clustermesh/v1/remotes/<cluster>.
func (k Keys) Remote(cluster string) string { return k.prefix + remotesDir + cluster }

// Synced is synced/<cluster>/<kind>.
func (k Keys) Synced(cluster, kind string) string { return k.prefix + syncedDir + cluster + "/" + kind }

// CIDRKey encodes a prefix as one key segment: "10.100.1.0/24" → "10.100.1.0-24".
func CIDRKey(p netip.Prefix) string {
	return p.Masked().Addr().String() + "-" + strconv.Itoa(p.Bits())
}

// ParseCIDRKey reverses CIDRKey.
func ParseCIDRKey(s string) (netip.Prefix, error) {
	i := strings.LastIndexByte(s, '-')
	if i < 0 {
		return netip.Prefix{}, fmt.Errorf("parse CIDR key %q: %w: expected <address>-<bits>, e.g. 10.100.1.0-24", s, ErrInvalid)
	}
	p, err := netip.ParsePrefix(s[:i] + "/" + s[i+1:])
	if err != nil || p != p.Masked() || CIDRKey(p) != s {
		return netip.Prefix{}, fmt.Errorf("parse CIDR key %q: %w: expected a canonical masked prefix such as 10.100.1.0-24", s, ErrInvalid)
	}
	return p, nil
}

// Tail returns what follows dir in key, or an error naming the key.
func (k Keys) tail(key, dir string) (string, error) {
	full := k.prefix + dir
	if !strings.HasPrefix(key, full) || len(key) == len(full) {
		return "", fmt.Errorf("parse key %q: %w: expected it under %q", key, ErrInvalid, full)
	}
	return key[len(full):], nil
}
