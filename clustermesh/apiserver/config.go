package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/clustermesh"
	"github.com/weftnet/weft/clustermesh/readproxy"
	"github.com/weftnet/weft/k8s"
	"github.com/weftnet/weft/kvstore"
	"github.com/weftnet/weft/state/records"
)

// Config is everything weft-apiserver is told at start. `weft clustermesh
// enable` writes it into <dir>/apiserver.json (keys are flag names).
type Config struct {
	ClusterName     string
	ClusterID       uint32
	RoutingMode     string
	PodCIDRPool     []string
	PodCIDRMaskSize int
	// GlobalCIDR turns global addressing on (empty: off): an IPv4 prefix,
	// unique in the mesh, at least as large as the IPv4 pod CIDR pool,
	// from which every pod gets a mesh-wide address (records.GlobalAddr).
	// Clusters with global addressing may share pod CIDRs.
	GlobalCIDR string
	// ServiceCIDRs are where the cluster's ClusterIPs come from (the
	// agents' --service-cidr); no connected cluster's global CIDR may
	// overlap them.
	ServiceCIDRs []string
	// Dir is the cluster's clustermesh directory (clustermesh.Dir): CA,
	// certificates, the served store's data, remote credentials.
	Dir string
	// StoreListen are the https URLs the served etcd listens on (for the
	// apiserver itself and, with EmbeddedStore, the cluster's agents).
	// StoreAdvertise is kept from before the read-only front: when set
	// and RemoteAdvertise is not, remote clusters are told its URLs with
	// the port + 3.
	StoreListen    []string
	StoreAdvertise []string
	// RemoteListen are the https URLs of the read-only front remote
	// clusters read through (default: each StoreListen URL with the
	// port + 3); RemoteAdvertise what remote clusters are told (default:
	// RemoteListen). RemoteLimits bound each remote cluster there.
	RemoteListen    []string
	RemoteAdvertise []string
	RemoteLimits    readproxy.Config
	// HA: several apiservers of a cluster form one served etcd. StoreName
	// is this member's name, StoreInitialCluster "name=peerURL" for every
	// member (empty: a single member whose peer URL is the client port + 1
	// over http), StorePeerListen this member's peer URLs (https, the
	// serving certificate, client certificates of the cluster's CA).
	StoreName           string
	StoreInitialCluster []string
	StorePeerListen     []string
	StoreDataDir        string // default <dir>/etcd
	// StoreHistory is how many revisions of the served store are kept;
	// older ones are compacted every GCInterval (watchers that fall
	// further behind re-list).
	StoreHistory int64
	// AdminListen are host:port or unix:///path addresses of the admin API.
	AdminListen   []string
	MetricsListen string // host:port of /metrics, empty: off
	// EmbeddedStore: the served store is the cluster's store (agents use
	// the agent certificate); otherwise KVStore is mirrored into it.
	EmbeddedStore bool
	KVStore       kvstore.Config

	HeartbeatInterval time.Duration
	GCInterval        time.Duration
	NodeGCGrace       time.Duration // pod CIDRs of nodes without a record this long are freed
	IdentityGCGrace   time.Duration

	// RelayListen is host:port of the flow relay (empty: off): the merged
	// flows of the cluster's agents, read on RelayAgentPort (their
	// --flows-listen-address), and of connected clusters' relays.
	// RelayAdvertise is what connected clusters are told (default:
	// RelayListen).
	RelayListen    string
	RelayAdvertise string
	RelayAgentPort int
	// RelayUIListen is host:port of the service map page over the relay
	// (plain HTTP, read-only; empty: off).
	RelayUIListen string

	// Kubernetes is the Kubernetes source (--kubernetes, --kubeconfig):
	// it mirrors the cluster's Kubernetes objects into the cluster store.
	Kubernetes k8s.Config
}

// DefaultConfig serves on loopback with the usual ports.
func DefaultConfig() Config {
	return Config{
		ClusterName: "", ClusterID: 1, RoutingMode: records.RoutingTunnel,
		PodCIDRPool: []string{"10.100.0.0/16"}, PodCIDRMaskSize: 24,
		ServiceCIDRs:      []string{"10.96.0.0/16"},
		Dir:               "/var/lib/weft/clustermesh",
		StoreListen:       []string{"https://127.0.0.1:2381"},
		AdminListen:       []string{"127.0.0.1:2383"},
		MetricsListen:     "127.0.0.1:9962",
		KVStore:           kvstore.DefaultConfig(),
		StoreHistory:      10000,
		RemoteLimits:      readproxy.DefaultConfig(),
		HeartbeatInterval: 5 * time.Second,
		GCInterval:        time.Minute,
		NodeGCGrace:       time.Hour,
		IdentityGCGrace:   15 * time.Minute,
		Kubernetes:        k8s.DefaultConfig(),
		RelayAgentPort:    clustermesh.RelayAgentPort,
	}
}

// RegisterFlags adds the apiserver's flags to fs with c's values as defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "cluster name, a DNS label of at most 32 characters")
	fs.Uint32Var(&c.ClusterID, "cluster-id", c.ClusterID, "cluster id, 1-255, unique in a mesh")
	fs.StringVar(&c.RoutingMode, "routing-mode", c.RoutingMode, "the cluster's routing mode: tunnel or native")
	fs.StringSliceVar(&c.PodCIDRPool, "pod-cidr-pool", c.PodCIDRPool, "the cluster's pod CIDR pool")
	fs.IntVar(&c.PodCIDRMaskSize, "pod-cidr-mask-size", c.PodCIDRMaskSize, "prefix length of one node's pod CIDR")
	fs.StringVar(&c.GlobalCIDR, "global-cidr", c.GlobalCIDR, "global addressing: an IPv4 prefix unique in the mesh, at least as large as the IPv4 pod CIDR pool, e.g. 242.1.0.0/16; every pod gets an address in it and the cluster may share pod CIDRs with other clusters that have one (empty: off)")
	fs.StringSliceVar(&c.ServiceCIDRs, "service-cidr", c.ServiceCIDRs, "the cluster's service CIDRs (the agents' --service-cidr); connected clusters' global CIDRs must not overlap them")
	fs.StringVar(&c.Dir, "dir", c.Dir, "clustermesh directory: CA, certificates, served store data, remote credentials")
	fs.StringSliceVar(&c.StoreListen, "store-listen", c.StoreListen, "https URLs the served etcd listens on")
	fs.StringSliceVar(&c.StoreAdvertise, "store-advertise", c.StoreAdvertise, "deprecated: remote clusters are told these URLs with the port + 3 when --remote-advertise is not given")
	fs.StringSliceVar(&c.RemoteListen, "remote-listen", c.RemoteListen, "https URLs of the read-only front remote clusters read through (default: each --store-listen URL with the port + 3)")
	fs.StringSliceVar(&c.RemoteAdvertise, "remote-advertise", c.RemoteAdvertise, "URLs remote clusters are told to read at (default: --remote-listen)")
	fs.IntVar(&c.RemoteLimits.MaxConnections, "remote-max-connections", c.RemoteLimits.MaxConnections, "connections one remote cluster may hold to the front (one per agent)")
	fs.IntVar(&c.RemoteLimits.MaxWatches, "remote-max-watches", c.RemoteLimits.MaxWatches, "watches one remote cluster may hold (four per agent)")
	fs.Float64Var(&c.RemoteLimits.RequestRate, "remote-request-rate", c.RemoteLimits.RequestRate, "calls and watch creations per second of one remote cluster")
	fs.IntVar(&c.RemoteLimits.RequestBurst, "remote-request-burst", c.RemoteLimits.RequestBurst, "burst of calls and watch creations of one remote cluster")
	fs.StringVar(&c.StoreName, "store-name", c.StoreName, "member name of the served etcd (default weft-apiserver-<cluster>)")
	fs.StringSliceVar(&c.StoreInitialCluster, "store-initial-cluster", c.StoreInitialCluster, "HA: name=https://peer:port of every apiserver of the cluster (empty: one apiserver)")
	fs.StringSliceVar(&c.StorePeerListen, "store-peer-listen", c.StorePeerListen, "HA: this member's peer URLs (https)")
	fs.StringVar(&c.StoreDataDir, "store-data-dir", c.StoreDataDir, "data of the served etcd (default <dir>/etcd)")
	fs.Int64Var(&c.StoreHistory, "store-history", c.StoreHistory, "revisions of the served etcd kept before compaction")
	fs.StringSliceVar(&c.AdminListen, "admin-listen", c.AdminListen, "admin API addresses: host:port or unix:///path (mutual TLS)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", c.MetricsListen, "host:port of the Prometheus /metrics endpoint (empty: off)")
	fs.BoolVar(&c.EmbeddedStore, "embedded-store", c.EmbeddedStore, "the served etcd is the cluster's store (agents connect with the agent certificate); otherwise --kvstore-* is mirrored into it")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often the heartbeat key is refreshed")
	fs.DurationVar(&c.GCInterval, "gc-interval", c.GCInterval, "how often unreferenced identities and dead nodes' pod CIDRs are collected")
	fs.DurationVar(&c.NodeGCGrace, "node-gc-grace", c.NodeGCGrace, "how long a pod CIDR outlives its node's record before it is freed")
	fs.DurationVar(&c.IdentityGCGrace, "identity-gc-grace", c.IdentityGCGrace, "how long an identity stays unreferenced before it is deleted")
	fs.StringVar(&c.RelayListen, "relay-listen", c.RelayListen, "host:port of the flow relay (mutual TLS): every agent's flows and connected clusters' relays merged (empty: off; usually port 4245)")
	fs.StringVar(&c.RelayAdvertise, "relay-advertise", c.RelayAdvertise, "host:port connected clusters' relays read this relay at (default: --relay-listen)")
	fs.IntVar(&c.RelayAgentPort, "relay-agent-port", c.RelayAgentPort, "port the agents serve their flows on (their --flows-listen-address)")
	fs.StringVar(&c.RelayUIListen, "relay-ui-listen", c.RelayUIListen, "host:port of the service map page over the relay (plain HTTP, read-only: bind it to a trusted address; empty: off; needs --relay-listen)")
	c.KVStore.RegisterFlags(fs)
	c.Kubernetes.RegisterFlags(fs)
}

// Validate checks every field and says what would be accepted.
func (c *Config) Validate() error {
	var errs []error
	if err := c.info().Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.pool(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.serviceCIDRs(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.globalCIDR(); err != nil {
		errs = append(errs, err)
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("--dir is empty: give the clustermesh directory `weft clustermesh enable` created"))
	}
	if len(c.StoreListen) == 0 {
		errs = append(errs, errors.New("--store-listen: give at least one https URL, e.g. https://10.0.0.1:2381"))
	}
	for _, u := range slices.Concat(c.StoreListen, c.StoreAdvertise, c.RemoteListen, c.RemoteAdvertise) {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Port() == "" {
			errs = append(errs, fmt.Errorf("store URL %q: accepted is https://<host>:<port>", u))
		}
	}
	if err := c.RemoteLimits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.StoreHistory < 1 {
		errs = append(errs, fmt.Errorf("--store-history %d: must be at least 1", c.StoreHistory))
	}
	if len(c.StoreInitialCluster) > 0 {
		if len(c.StorePeerListen) == 0 {
			errs = append(errs, errors.New("--store-initial-cluster needs --store-peer-listen: this member's https peer URLs"))
		}
		for _, m := range c.StoreInitialCluster {
			name, u, ok := strings.Cut(m, "=")
			if p, err := url.Parse(u); !ok || name == "" || err != nil || p.Scheme != "https" || p.Port() == "" {
				errs = append(errs, fmt.Errorf("--store-initial-cluster member %q: accepted is name=https://<host>:<port>", m))
			}
		}
	}
	for _, u := range c.StorePeerListen {
		if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Port() == "" {
			errs = append(errs, fmt.Errorf("--store-peer-listen %q: accepted is https://<host>:<port>", u))
		}
	}
	if len(c.AdminListen) == 0 {
		errs = append(errs, errors.New("--admin-listen: give at least one address, e.g. 10.0.0.1:2383 or unix:///run/weft/admin.sock"))
	}
	for _, a := range c.AdminListen {
		if _, _, err := splitListen(a); err != nil {
			errs = append(errs, err)
		}
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			errs = append(errs, fmt.Errorf("--metrics-listen %q: accepted is host:port, e.g. 127.0.0.1:9962", c.MetricsListen))
		}
	}
	for flag, a := range map[string]string{"relay-listen": c.RelayListen, "relay-advertise": c.RelayAdvertise} {
		if _, port, err := net.SplitHostPort(a); a != "" && (err != nil || port == "") {
			errs = append(errs, fmt.Errorf("--%s %q: accepted is host:port, e.g. 10.0.0.1:4245", flag, a))
		}
	}
	if _, port, err := net.SplitHostPort(c.RelayUIListen); c.RelayUIListen != "" && (err != nil || port == "") {
		errs = append(errs, fmt.Errorf("--relay-ui-listen %q: accepted is host:port, e.g. 127.0.0.1:12000", c.RelayUIListen))
	}
	if c.RelayUIListen != "" && c.RelayListen == "" {
		errs = append(errs, errors.New("--relay-ui-listen without --relay-listen: the service map reads the relay"))
	}
	if c.RelayAdvertise != "" && c.RelayListen == "" {
		errs = append(errs, errors.New("--relay-advertise without --relay-listen: give the address the relay listens on"))
	}
	if c.RelayAgentPort < 1 || c.RelayAgentPort > 65535 {
		errs = append(errs, fmt.Errorf("--relay-agent-port %d: accepted is 1-65535", c.RelayAgentPort))
	}
	for name, d := range map[string]time.Duration{"heartbeat-interval": c.HeartbeatInterval, "gc-interval": c.GCInterval,
		"node-gc-grace": c.NodeGCGrace, "identity-gc-grace": c.IdentityGCGrace} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s %v: must be positive", name, d))
		}
	}
	if !c.EmbeddedStore {
		if err := c.KVStore.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Kubernetes.On() {
		kc := c.kubernetes()
		if err := kc.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kubernetes is the source's configuration for this cluster.
func (c *Config) kubernetes() k8s.Config {
	kc := c.Kubernetes
	kc.Cluster = c.ClusterName
	return kc
}

func (c *Config) info() clustermesh.Info {
	pool, _ := c.pool()
	global, _ := c.globalCIDR()
	services, _ := c.serviceCIDRs()
	return clustermesh.Info{Name: c.ClusterName, ID: c.ClusterID, Routing: c.RoutingMode, PodCIDRs: pool, Endpoints: c.remoteAdvertise(),
		Relay: c.relayAdvertise(), GlobalCIDR: global, ServiceCIDRs: services}
}

// clusterConfig is what the apiserver publishes at cluster-config/<cluster>.
func (c *Config) clusterConfig() records.ClusterConfig {
	i := c.info()
	return records.ClusterConfig{Name: i.Name, ID: i.ID, PodCIDRs: i.PodCIDRs, PodCIDRMaskSize: c.PodCIDRMaskSize, Routing: i.Routing,
		GlobalCIDR: i.GlobalCIDR, ServiceCIDRs: i.ServiceCIDRs}
}

// globalCIDR parses --global-cidr (zero when empty); Info.Validate checks
// it against the pools.
func (c *Config) globalCIDR() (netip.Prefix, error) {
	if c.GlobalCIDR == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(c.GlobalCIDR)
	if err != nil || !p.Addr().Is4() || p != p.Masked() {
		return netip.Prefix{}, fmt.Errorf("--global-cidr %q: want a masked IPv4 prefix such as 242.1.0.0/16", c.GlobalCIDR)
	}
	return p, nil
}

func (c *Config) serviceCIDRs() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.ServiceCIDRs {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			return nil, fmt.Errorf("--service-cidr %q: want network prefixes such as 10.96.0.0/16", s)
		}
		out = append(out, p)
	}
	if len(out) > 4 {
		return nil, fmt.Errorf("--service-cidr %v: give at most 4 prefixes", c.ServiceCIDRs)
	}
	return out, nil
}

// relayAdvertise is the relay address connected clusters are told: the
// advertised one, or the listen address unless it names no host.
func (c *Config) relayAdvertise() string {
	if c.RelayAdvertise != "" {
		return c.RelayAdvertise
	}
	host, _, err := net.SplitHostPort(c.RelayListen)
	if err != nil || host == "" || net.ParseIP(host).IsUnspecified() {
		return ""
	}
	return c.RelayListen
}

// remoteFrontPort is how far the front's default port is from the served
// etcd's (+1 is a single member's peer port).
const remoteFrontPort = 3

// remoteListen are the front's listen URLs.
func (c *Config) remoteListen() []string {
	if len(c.RemoteListen) > 0 {
		return c.RemoteListen
	}
	return shiftPorts(c.StoreListen, remoteFrontPort)
}

// remoteAdvertise are the URLs remote clusters are told.
func (c *Config) remoteAdvertise() []string {
	switch {
	case len(c.RemoteAdvertise) > 0:
		return c.RemoteAdvertise
	case len(c.StoreAdvertise) > 0:
		return shiftPorts(c.StoreAdvertise, remoteFrontPort)
	}
	return c.remoteListen()
}

// shiftPorts adds d to the port of each URL (unparseable ones are kept:
// Validate reports them).
func shiftPorts(urls []string, d int) []string {
	out := make([]string, 0, len(urls))
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil {
			if port, err := strconv.Atoi(u.Port()); err == nil {
				u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port+d))
				raw = u.String()
			}
		}
		out = append(out, raw)
	}
	return out
}

func (c *Config) pool() ([]netip.Prefix, error) {
	var pool []netip.Prefix
	for _, s := range c.PodCIDRPool {
		p, err := netip.ParsePrefix(s)
		if err != nil || p != p.Masked() {
			return nil, fmt.Errorf("--pod-cidr-pool %q: want network prefixes such as 10.100.0.0/16", s)
		}
		pool = append(pool, p)
	}
	if err := records.ValidatePool(pool, c.PodCIDRMaskSize, 0); err != nil {
		return nil, fmt.Errorf("--pod-cidr-pool/--pod-cidr-mask-size: %w", err)
	}
	return pool, nil
}

// splitListen turns host:port into ("tcp", host:port) and unix:///path
// (or unix:/path) into ("unix", path).
func splitListen(a string) (network, addr string, err error) {
	if p, ok := strings.CutPrefix(a, "unix://"); ok && p != "" {
		return "unix", p, nil
	}
	if p, ok := strings.CutPrefix(a, "unix:"); ok && p != "" {
		return "unix", p, nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", "", fmt.Errorf("admin address %q: accepted are host:port and unix:///path", a)
	}
	return "tcp", a, nil
}
