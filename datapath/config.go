package datapath

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"time"
)

// Mode is how pod traffic crosses nodes.
type Mode string

const (
	// ModeTunnel encapsulates in VXLAN, the VNI carrying the source identity.
	ModeTunnel Mode = "tunnel"
	// ModeNative routes pod CIDRs via the nodes' underlay addresses.
	ModeNative Mode = "native"
)

// Config configures the datapath of one node.
type Config struct {
	// Node names the node; maps and links are pinned under BPFFS/weft/Node.
	Node string
	// BPFFS is the bpffs mount point, mounted when missing.
	BPFFS string
	// NetNS is the path of the network namespace holding the node's
	// devices; empty means the caller's.
	NetNS string
	// Mode is tunnel or native.
	Mode Mode
	// UnderlayDevice carries node-to-node traffic and NodePort traffic.
	UnderlayDevice string
	// TunnelDevice is the VXLAN device: pod traffic in tunnel mode,
	// NodePort traffic to backends on other nodes in both modes.
	TunnelDevice string
	// TunnelPort is the VXLAN UDP port.
	TunnelPort uint16
	// CgroupPath is the cgroup v2 directory the socket load balancer is
	// attached to; empty disables ClusterIP translation.
	CgroupPath string
	// TraceAllForwards emits a flow event for every forwarded packet, not
	// only for each new flow.
	TraceAllForwards bool
	// Masquerade translates local pods' traffic for outside the cluster to
	// NodeIP (and a port of 61000-65535) on the underlay's egress, except
	// to addresses the ipcache knows as cluster endpoints or nodes and to
	// NonMasquerade (the cluster's pod pool and the agent's
	// --non-masquerade-cidrs).
	Masquerade    bool
	NodeIP        netip.Addr
	NonMasquerade []netip.Prefix
	// LegacyTC attaches with clsact + cls_bpf even where tcx exists.
	LegacyTC bool
	// ConntrackGCInterval is how often Run deletes conntrack entries idle
	// for longer than ConntrackMaxIdle.
	ConntrackGCInterval time.Duration
	ConntrackMaxIdle    time.Duration
	// Log receives the datapath's logs.
	Log *slog.Logger
}

// DefaultConfig returns the defaults of a node in tunnel mode.
func DefaultConfig() Config {
	return Config{
		BPFFS:        "/sys/fs/bpf",
		Mode:         ModeTunnel,
		TunnelDevice: "weft_vxlan",
		TunnelPort:   8472,
		Log:          slog.Default(),

		ConntrackGCInterval: time.Minute,
		ConntrackMaxIdle:    6 * time.Hour, // Linux's established TCP timeout is 5 days; LRU evicts first
	}
}

var nodeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// Validate reports the first invalid field.
func (c Config) Validate() error {
	if !nodeName.MatchString(c.Node) {
		return fmt.Errorf("invalid node name %q: want 1-63 letters, digits, '.', '_' or '-'", c.Node)
	}
	if c.Mode != ModeTunnel && c.Mode != ModeNative {
		return fmt.Errorf("invalid mode %q: want %q or %q", c.Mode, ModeTunnel, ModeNative)
	}
	if c.UnderlayDevice == "" {
		return fmt.Errorf("no underlay device: set UnderlayDevice")
	}
	if c.TunnelDevice == "" || c.TunnelPort == 0 {
		return fmt.Errorf("no VXLAN device or port (%q, %d): both modes need them (native mode for NodePort traffic)", c.TunnelDevice, c.TunnelPort)
	}
	if c.BPFFS == "" {
		return fmt.Errorf("no bpffs path: set BPFFS")
	}
	if c.ConntrackGCInterval <= 0 || c.ConntrackMaxIdle < 2*time.Second {
		return fmt.Errorf("invalid conntrack GC (every %v, idle %v): want a positive interval and an idle time of at least 2s (entries are refreshed once a second)",
			c.ConntrackGCInterval, c.ConntrackMaxIdle)
	}
	if c.Log == nil {
		return fmt.Errorf("no logger: set Log")
	}
	return nil
}

// PinDir is where the node's maps and links are pinned.
func (c Config) PinDir() string {
	return filepath.Join(c.BPFFS, "weft", c.Node)
}
