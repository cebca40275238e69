package agent

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/agent/ingress"
	"github.com/weftnet/weft/agent/metrics"
	"github.com/weftnet/weft/agent/proxy"
	"github.com/weftnet/weft/clustermesh/gc"
	"github.com/weftnet/weft/flow"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Config is everything weft-agent is told at start.
type Config struct {
	// Version is the binary's, shown by weft status (not a flag).
	Version string

	NodeName        string
	ClusterName     string
	ClusterID       uint32
	RoutingMode     string
	NodeIP          string // empty: the address of the default-route device
	UnderlayDevice  string // empty: the device holding NodeIP
	PodCIDRPool     []string
	PodCIDRMaskSize int
	StateDir        string
	Socket          string
	BPFFS           string
	CgroupPath      string
	HealthPort      int
	// HealthInterval is how often the other nodes' health endpoints are probed.
	HealthInterval time.Duration
	// ServiceCIDR is where ClusterIPs are allocated from (services).
	ServiceCIDR string
	// GCInterval, IdentityGCGrace and NodeGCGrace configure the cluster's
	// collector (clustermesh/gc) when this agent holds its lock.
	GCInterval      time.Duration
	IdentityGCGrace time.Duration
	NodeGCGrace     time.Duration
	// Masquerade translates pods' traffic for outside the cluster to the
	// node's address (BPF, on the underlay's egress); NonMasqueradeCIDRs
	// are ranges it leaves alone besides the cluster's pod pool.
	Masquerade         bool
	NonMasqueradeCIDRs []string
	// RemoteSyncTimeout bounds how long global services wait, at start,
	// for every remote cluster to be synced before they are programmed.
	RemoteSyncTimeout time.Duration
	KVStore           kvstore.Config
	// Flows is flow recording and serving (weft observe, weft-relay).
	Flows flow.Config
	// Proxy is the node's L7 proxy (docs/l7.md).
	Proxy proxy.Config
	// Ingress is where the node serves the Ingresses (docs/ingress.md).
	Ingress ingress.Config
	// Metrics is the Prometheus endpoint (off by default).
	Metrics metrics.Config
}

// DefaultConfig is a standalone node of cluster "default" in tunnel mode.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		NodeName:          strings.ToLower(strings.Split(host, ".")[0]),
		ClusterName:       "default",
		ClusterID:         1,
		RoutingMode:       records.RoutingTunnel,
		PodCIDRPool:       []string{"10.100.0.0/16"},
		PodCIDRMaskSize:   24,
		StateDir:          "/var/lib/weft",
		Socket:            "/var/run/weft/agent.sock",
		BPFFS:             "/sys/fs/bpf",
		CgroupPath:        defaultCgroup2(),
		HealthPort:        4240,
		HealthInterval:    5 * time.Second,
		ServiceCIDR:       "10.96.0.0/16",
		GCInterval:        gc.DefaultConfig().Interval,
		IdentityGCGrace:   gc.DefaultConfig().IdentityGrace,
		NodeGCGrace:       gc.DefaultConfig().NodeGrace,
		RemoteSyncTimeout: 10 * time.Second,
		Masquerade:        true,
		KVStore:           kvstore.DefaultConfig(),
		Flows:             flow.DefaultConfig(),
		Proxy:             proxy.DefaultConfig(),
		Ingress:           ingress.DefaultConfig(),
		Metrics:           metrics.DefaultConfig(),
	}
}

// RegisterFlags adds the agent's flags to fs with c's values as defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.NodeName, "node-name", c.NodeName, "this node's name (a DNS label)")
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "cluster name, a DNS label of at most 32 characters")
	fs.Uint32Var(&c.ClusterID, "cluster-id", c.ClusterID, "cluster id, 1-255, unique in a mesh")
	fs.StringVar(&c.RoutingMode, "routing-mode", c.RoutingMode, "how pod traffic crosses nodes: tunnel (VXLAN) or native")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "IPv4 address other nodes reach this node at (default: the default-route device's)")
	fs.StringVar(&c.UnderlayDevice, "underlay-device", c.UnderlayDevice, "device carrying node-to-node traffic (default: the one holding --node-ip)")
	fs.StringSliceVar(&c.PodCIDRPool, "pod-cidr-pool", c.PodCIDRPool, "cluster-wide pool nodes take their pod CIDRs from")
	fs.BoolVar(&c.Masquerade, "masquerade", c.Masquerade, "translate pods' traffic for outside the cluster to the node's address (BPF)")
	fs.StringSliceVar(&c.NonMasqueradeCIDRs, "non-masquerade-cidrs", c.NonMasqueradeCIDRs,
		"IPv4 ranges pods reach with their own address besides the cluster's and connected clusters' pods and nodes (e.g. 10.0.0.0/8)")
	fs.IntVar(&c.PodCIDRMaskSize, "pod-cidr-mask-size", c.PodCIDRMaskSize, "prefix length of one node's pod CIDR")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory for endpoint state kept across restarts")
	fs.StringVar(&c.Socket, "socket", c.Socket, "unix socket of the gRPC API (mode 0600)")
	fs.StringVar(&c.BPFFS, "bpffs", c.BPFFS, "bpffs directory; maps are pinned under <bpffs>/weft/<node>")
	fs.StringVar(&c.CgroupPath, "cgroup-path", c.CgroupPath, "cgroup v2 directory the socket load balancer attaches to")
	fs.IntVar(&c.HealthPort, "health-port", c.HealthPort, "TCP port of the health endpoint on --node-ip")
	fs.DurationVar(&c.HealthInterval, "health-interval", c.HealthInterval, "how often other nodes' health endpoints are probed")
	fs.StringVar(&c.ServiceCIDR, "service-cidr", c.ServiceCIDR, "IPv4 prefix ClusterIPs are allocated from; give every agent of a cluster the same") // services
	fs.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "how often the cluster's collector runs while this agent holds its lock (one agent or apiserver per cluster does)")
	fs.DurationVar(&c.IdentityGCGrace, "identity-gc-grace", c.IdentityGCGrace, "how long an identity stays unreferenced before it is deleted")
	fs.DurationVar(&c.NodeGCGrace, "node-gc-grace", c.NodeGCGrace, "how long a pod CIDR outlives its node's record before it is freed")
	fs.DurationVar(&c.RemoteSyncTimeout, "clustermesh-sync-timeout", c.RemoteSyncTimeout,
		"how long global services wait at start for every connected cluster to be synced before they are programmed without the ones that are not (weft status says which)")
	c.KVStore.RegisterFlags(fs)
	c.Flows.RegisterFlags(fs)
	c.Proxy.RegisterFlags(fs)
	c.Ingress.RegisterFlags(fs)
	c.Metrics.RegisterFlags(fs)
}

// Validate checks every field and says what would be accepted.
func (c *Config) Validate() error {
	var errs []error
	if err := records.ValidateNodeName(c.NodeName); err != nil {
		errs = append(errs, fmt.Errorf("--node-name: %w", err))
	}
	if err := records.ValidateClusterName(c.ClusterName); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-name: %w", err))
	}
	if err := records.ValidateClusterID(c.ClusterID); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-id: %w", err))
	}
	if c.RoutingMode != records.RoutingTunnel && c.RoutingMode != records.RoutingNative {
		errs = append(errs, fmt.Errorf("--routing-mode %q: accepted are %q and %q", c.RoutingMode, records.RoutingTunnel, records.RoutingNative))
	}
	if c.NodeIP != "" {
		if a, err := netip.ParseAddr(c.NodeIP); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("--node-ip %q: want an IPv4 address such as 192.168.1.10", c.NodeIP))
		}
	}
	if _, err := c.pool(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.nonMasquerade(); err != nil {
		errs = append(errs, err)
	}
	if c.StateDir == "" || c.Socket == "" || c.BPFFS == "" {
		errs = append(errs, errors.New("--state-dir, --socket and --bpffs must not be empty"))
	}
	if c.HealthPort <= 0 || c.HealthPort > 65535 {
		errs = append(errs, fmt.Errorf("--health-port %d: want 1-65535", c.HealthPort))
	}
	if c.HealthInterval <= 0 {
		errs = append(errs, fmt.Errorf("--health-interval %v: must be positive", c.HealthInterval))
	}
	for name, d := range map[string]time.Duration{"gc-interval": c.GCInterval, "identity-gc-grace": c.IdentityGCGrace, "node-gc-grace": c.NodeGCGrace,
		"clustermesh-sync-timeout": c.RemoteSyncTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s %v: must be positive", name, d))
		}
	}
	if p, err := netip.ParsePrefix(c.ServiceCIDR); err != nil || !p.Addr().Is4() || p != p.Masked() || p.Bits() > 30 { // services
		errs = append(errs, fmt.Errorf("--service-cidr %q: want a masked IPv4 prefix of at most /30, such as 10.96.0.0/16", c.ServiceCIDR))
	}
	if err := c.KVStore.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Flows.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Proxy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Ingress.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Metrics.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// nonMasquerade parses --non-masquerade-cidrs.
func (c *Config) nonMasquerade() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.NonMasqueradeCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("--non-masquerade-cidrs %q: want IPv4 prefixes such as 10.0.0.0/8", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func (c *Config) pool() ([]netip.Prefix, error) {
	var pool []netip.Prefix
	for _, s := range c.PodCIDRPool {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() || p != p.Masked() {
			return nil, fmt.Errorf("--pod-cidr-pool %q: want IPv4 network prefixes such as 10.100.0.0/16", s)
		}
		pool = append(pool, p)
	}
	if err := records.ValidatePool(pool, c.PodCIDRMaskSize, 0); err != nil {
		return nil, fmt.Errorf("--pod-cidr-pool/--pod-cidr-mask-size: %w", err)
	}
	return pool, nil
}

func defaultCgroup2() string {
	for _, p := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if _, err := os.Stat(p + "/cgroup.procs"); err == nil {
			if _, err := os.Stat(p + "/cgroup.controllers"); err == nil {
				return p
			}
		}
	}
	return "/sys/fs/cgroup"
}
