package bpf

import "net/netip"

// Map layouts, generated from c/maps.h. STABLE (v1): they are pinned and
// outlive the agent; see the layout comment in c/maps.h before changing one.
type (
	IPCacheKey    = weftIpcacheKey
	IPCacheValue  = weftIpcacheValue
	EndpointKey   = weftEndpointKey
	EndpointInfo  = weftEndpointInfo
	PolicyKey     = weftPolicyKey
	PolicyValue   = weftPolicyValue
	ServiceKey    = weftLbServiceKey
	ServiceValue  = weftLbServiceValue
	SlotKey       = weftLbSlotKey
	Backend       = weftLbBackend
	RevNAT        = weftLbRevnat
	AffinityKey   = weftLbAffinityKey
	AffinityValue = weftLbAffinityValue
	SockRevNATKey = weftSockRevnatKey
	CTKey         = weftCtKey
	CTEntry       = weftCtEntry
	Config        = weftConfig
	FlowEvent     = weftFlowEvent
	Metric        = weftMetric
	MasqConfig    = weftMasqConfig
	NomasqKey     = weftNomasqKey
	GlobalConfig  = weftGlobalConfig
	ProxyConfig   = weftProxyConfig
)

// Constants mirroring the #defines of c/maps.h.
const (
	FamilyIPv4 = 2
	FamilyIPv6 = 10

	IdentityHost       = 1
	IdentityWorld      = 2
	IdentityRemoteNode = 6

	EndpointPolicyIngress = 1
	EndpointPolicyEgress  = 2

	DirIngress = 0
	DirEgress  = 1

	VerdictAllow = 1
	VerdictDeny  = 2
	// VerdictRedirect admits a flow only through the node's L7 proxy.
	VerdictRedirect = 3

	ServiceSock     = 1
	ServiceTC       = 2
	ServiceAffinity = 4

	CTSeenReply = 1
	CTService   = 2

	ModeTunnel     = 1
	ModeNative     = 2
	ConfigTraceAll = 1

	FlowForwarded = 1
	FlowDropped   = 2

	ReasonForwarded        = 0
	ReasonPolicyDenied     = 1
	ReasonNoBackend        = 2
	ReasonInvalidPacket    = 3
	ReasonUnknownSource    = 4
	ReasonRedirectFailed   = 5
	ReasonNATFailed        = 6
	ReasonNoTunnelEndpoint = 7
	ReasonProxyUnavailable = 8
	ReasonMax              = 16

	ObsToEndpoint   = 1
	ObsToOverlay    = 2
	ObsToStack      = 3
	ObsFromOverlay  = 4
	ObsFromNetdev   = 5
	ObsFromEndpoint = 6
	ObsSock         = 7
	ObsToNetdev     = 8
	ObsToProxy      = 9

	// MarkProxy is the skb mark (in MarkMask) of packets the datapath
	// hands to the L7 proxy: policy routing delivers them locally.
	MarkProxy = 0x5800
	// MarkProxyUpstream marks the egress proxy's connections, opened
	// from the client's address (SO_MARK): the datapath gives them the
	// client's identity and hands their replies to the proxy.
	MarkProxyUpstream = 0x5900
	MarkMask          = 0xff00
)

// Addr16 returns the family and the 16-byte map form of addr: IPv4 in the
// first four bytes, IPv6 in all sixteen.
func Addr16(addr netip.Addr) (uint8, [16]byte) {
	var b [16]byte
	if addr.Is4() || addr.Is4In6() {
		a := addr.Unmap().As4()
		copy(b[:], a[:])
		return FamilyIPv4, b
	}
	return FamilyIPv6, addr.As16()
}

// AddrFrom16 is the inverse of Addr16.
func AddrFrom16(family uint8, b [16]byte) netip.Addr {
	if family == FamilyIPv4 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// NewIPCacheKey returns the LPM key of prefix p.
func NewIPCacheKey(p netip.Prefix) IPCacheKey {
	fam, a := Addr16(p.Masked().Addr())
	return IPCacheKey{Prefixlen: uint32(32 + p.Bits()), Family: fam, Addr: a}
}

// Prefix returns the prefix an IPCacheKey stands for.
func (k IPCacheKey) Prefix() netip.Prefix {
	return netip.PrefixFrom(AddrFrom16(k.Family, k.Addr), int(k.Prefixlen)-32)
}

// NewEndpointKey returns the endpoint map key of addr.
func NewEndpointKey(addr netip.Addr) EndpointKey {
	fam, a := Addr16(addr)
	return EndpointKey{Addr: a, Family: fam}
}

// NewServiceKey returns the LB service key of a frontend.
func NewServiceKey(addr netip.AddrPort, proto uint8) ServiceKey {
	fam, a := Addr16(addr.Addr())
	return ServiceKey{Addr: a, Port: htons(addr.Port()), Proto: proto, Family: fam}
}

// Htons converts a port to the network-order form the maps hold.
func Htons(p uint16) uint16 { return htons(p) }

func htons(p uint16) uint16 { return p<<8 | p>>8 }
