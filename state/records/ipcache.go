package records

import (
	"fmt"
	"net/netip"
	"strings"
)

// IPCacheEntry is the value of state/ip/v1/<cluster>/<ip>: which identity an
// address has and which node (tunnel endpoint) it lives behind. Bound to the
// owning agent's lease. STABLE (v1).
type IPCacheEntry struct {
	Version    int         `json:"v"`
	IP         netip.Addr  `json:"ip"`
	Identity   ID          `json:"identity"`
	HostIP     netip.Addr  `json:"hostIP,omitzero"`
	Namespace  string      `json:"namespace,omitempty"`
	Pod        string      `json:"pod,omitempty"`
	NamedPorts []NamedPort `json:"namedPorts,omitempty"`
	// GlobalIP is the address's global address when its cluster has
	// global addressing (ClusterConfig.GlobalCIDR, GlobalAddr): what other
	// clusters reach it at. Added compatibly in v1 (omitted when unset).
	GlobalIP netip.Addr `json:"globalIP,omitzero"`
}

// NamedPort is a container port with a name, for policies that name ports.
type NamedPort struct {
	Name     string `json:"name"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
}

// Protocols accepted for ports.
const (
	ProtoTCP  = "TCP"
	ProtoUDP  = "UDP"
	ProtoSCTP = "SCTP"
)

func validateProtocol(p string) error {
	switch p {
	case ProtoTCP, ProtoUDP, ProtoSCTP:
		return nil
	}
	return fmt.Errorf("protocol %q: %w: accepted are TCP, UDP and SCTP", p, ErrInvalid)
}

// Validate checks the address, identity and pod reference.
func (e *IPCacheEntry) Validate() error {
	if !e.IP.IsValid() || e.IP.Zone() != "" || e.IP.IsUnspecified() {
		return fmt.Errorf("ipcache entry %v: %w: needs a unicast address without zone", e.IP, ErrInvalid)
	}
	if err := e.Identity.Validate(); err != nil {
		return fmt.Errorf("ipcache entry %v: %w", e.IP, err)
	}
	if e.HostIP.IsValid() && (e.HostIP.Zone() != "" || e.HostIP.IsUnspecified()) {
		return fmt.Errorf("ipcache entry %v: %w: host IP %v is not a unicast address", e.IP, ErrInvalid, e.HostIP)
	}
	if e.Namespace != "" {
		if err := ValidateNamespace(e.Namespace); err != nil {
			return fmt.Errorf("ipcache entry %v: %w", e.IP, err)
		}
	}
	if e.Pod != "" {
		if err := ValidateObjectName(e.Pod); err != nil {
			return fmt.Errorf("ipcache entry %v: %w", e.IP, err)
		}
	}
	if e.GlobalIP.IsValid() && (!e.GlobalIP.Is4() || e.GlobalIP.IsUnspecified() || !e.IP.Is4()) {
		return fmt.Errorf("ipcache entry %v: %w: global IP %v: accepted is an IPv4 unicast address, for an IPv4 address", e.IP, ErrInvalid, e.GlobalIP)
	}
	if len(e.NamedPorts) > 64 {
		return fmt.Errorf("ipcache entry %v: %w: at most 64 named ports", e.IP, ErrInvalid)
	}
	for _, p := range e.NamedPorts {
		if !isDNSLabel(p.Name, 15) || p.Port == 0 {
			return fmt.Errorf("ipcache entry %v: %w: named port %q/%d needs a lowercase name of at most 15 characters and a port", e.IP, ErrInvalid, p.Name, p.Port)
		}
		if err := validateProtocol(p.Protocol); err != nil {
			return fmt.Errorf("ipcache entry %v: %w", e.IP, err)
		}
	}
	return nil
}

// DecodeIPCacheEntry decodes the value of key and checks it matches the key.
func (k Keys) DecodeIPCacheEntry(key string, value []byte) (IPCacheEntry, error) {
	_, ip, err := k.ParseIPCacheKey(key)
	if err != nil {
		return IPCacheEntry{}, err
	}
	var e IPCacheEntry
	if err := decode(key, value, MaxSmallRecord, &e); err != nil {
		return IPCacheEntry{}, err
	}
	if e.IP != ip {
		return IPCacheEntry{}, mismatch(key, "ip", e.IP.String(), ip.String())
	}
	return e, nil
}

// ParseIPCacheKey returns the cluster and address of an ipcache key.
func (k Keys) ParseIPCacheKey(key string) (string, netip.Addr, error) {
	t, err := k.tail(key, ipcacheDir)
	if err != nil {
		return "", netip.Addr{}, err
	}
	cluster, s, ok := strings.Cut(t, "/")
	if !ok || ValidateClusterName(cluster) != nil {
		return "", netip.Addr{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<ip>", key, ErrInvalid)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.String() != s {
		return "", netip.Addr{}, fmt.Errorf("parse key %q: %w: %q is not an address in canonical form", key, ErrInvalid, s)
	}
	return cluster, ip, nil
}
