package preflight

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/datapath/bpf"
	"github.com/weftnet/weft/kvstore"
)

// Routing modes, as weft-agent's --routing-mode accepts them.
const (
	RoutingTunnel = "tunnel"
	RoutingNative = "native"
)

// Config is the part of weft-agent's configuration the checks look at.
// Its flags carry the agent's flag names, so an agent's config file can be
// read with LoadAgentFile.
type Config struct {
	RoutingMode    string
	NodeIP         string // empty: the default-route device's address
	UnderlayDevice string // empty: the device holding NodeIP
	BPFFS          string
	CgroupPath     string // empty: the first cgroup v2 hierarchy found
	KVStore        kvstore.Config
	// SkipStore leaves out the store check (weft-agent at start: the store
	// may come up after the agent, which retries).
	SkipStore bool
	// Startup: the checks run as weft-agent starts, after it mounted what
	// was missing; rp_filter that the agent resets itself is not a failure.
	Startup bool
}

// DefaultConfig is weft-agent's default.
func DefaultConfig() Config {
	return Config{RoutingMode: RoutingTunnel, BPFFS: bpf.DefaultFS, KVStore: kvstore.DefaultConfig()}
}

// RegisterFlags adds the checked settings under weft-agent's flag names.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.RoutingMode, "routing-mode", c.RoutingMode, "routing mode the agent will use: tunnel (VXLAN) or native")
	fs.StringVar(&c.NodeIP, "node-ip", c.NodeIP, "the node's IPv4 address (default: the default-route device's)")
	fs.StringVar(&c.UnderlayDevice, "underlay-device", c.UnderlayDevice, "device carrying node-to-node traffic (default: the one holding --node-ip)")
	fs.StringVar(&c.BPFFS, "bpffs", c.BPFFS, "bpffs directory the agent pins under")
	fs.StringVar(&c.CgroupPath, "cgroup-path", c.CgroupPath, "cgroup v2 directory of the socket load balancer (default: the first cgroup2 mount of "+fmt.Sprint(bpf.Cgroup2Candidates)+")")
	c.KVStore.RegisterFlags(fs)
}

// Validate checks the settings and says what would be accepted.
func (c *Config) Validate() error {
	var errs []error
	if c.RoutingMode != RoutingTunnel && c.RoutingMode != RoutingNative {
		errs = append(errs, fmt.Errorf("--routing-mode %q: accepted are %q and %q", c.RoutingMode, RoutingTunnel, RoutingNative))
	}
	if c.NodeIP != "" {
		if a, err := netip.ParseAddr(c.NodeIP); err != nil || !a.Is4() {
			errs = append(errs, fmt.Errorf("--node-ip %q: want an IPv4 address such as 192.168.1.10", c.NodeIP))
		}
	}
	if c.BPFFS == "" {
		errs = append(errs, errors.New("--bpffs is empty: give the bpffs directory, e.g. "+bpf.DefaultFS))
	}
	if !c.SkipStore {
		if err := c.KVStore.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadAgentFile applies weft-agent's config file (YAML or JSON, flag names
// as keys) to the flags of fs not set on the command line. Keys fs does not
// know (the agent's other settings) are ignored.
func LoadAgentFile(fs *pflag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read agent config file: %w", err)
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fmt.Errorf("parse agent config file %s: %w", path, err)
	}
	var values map[string]any
	if err := json.Unmarshal(js, &values); err != nil {
		return fmt.Errorf("parse agent config file %s: want an object of flag names to values: %w", path, err)
	}
	for name, v := range values {
		f := fs.Lookup(name)
		if f == nil || f.Changed {
			continue
		}
		s := fmt.Sprint(v)
		if list, ok := v.([]any); ok {
			s = ""
			for i, p := range list {
				if i > 0 {
					s += ","
				}
				s += fmt.Sprint(p)
			}
		}
		if err := fs.Set(name, s); err != nil {
			return fmt.Errorf("agent config file %s: %s: %w", path, name, err)
		}
	}
	return nil
}
