package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/internal/daemonconfig"
)

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"default", func(c *Config) { c.NodeName = "n1" }, ""},
		{"native", func(c *Config) { c.NodeName = "n1"; c.RoutingMode = "native" }, ""},
		{"bad routing", func(c *Config) { c.NodeName = "n1"; c.RoutingMode = "geneve" }, `--routing-mode "geneve": accepted are "tunnel" and "native"`},
		{"bad node name", func(c *Config) { c.NodeName = "N_1" }, "--node-name"},
		{"cluster id 0", func(c *Config) { c.NodeName = "n1"; c.ClusterID = 0 }, "--cluster-id"},
		{"cluster id 256", func(c *Config) { c.NodeName = "n1"; c.ClusterID = 256 }, "--cluster-id"},
		{"long cluster name", func(c *Config) { c.NodeName = "n1"; c.ClusterName = strings.Repeat("c", 33) }, "--cluster-name"},
		{"node ip v6", func(c *Config) { c.NodeName = "n1"; c.NodeIP = "fd00::1" }, "want an IPv4 address"},
		{"pool not a prefix", func(c *Config) { c.NodeName = "n1"; c.PodCIDRPool = []string{"10.0.0.1"} }, "--pod-cidr-pool"},
		{"pool host bits", func(c *Config) { c.NodeName = "n1"; c.PodCIDRPool = []string{"10.0.0.1/16"} }, "network prefixes"},
		{"mask wider than pool", func(c *Config) { c.NodeName = "n1"; c.PodCIDRMaskSize = 8 }, "--pod-cidr-pool/--pod-cidr-mask-size"},
		{"health port", func(c *Config) { c.NodeName = "n1"; c.HealthPort = 70000 }, "--health-port"},
		{"store", func(c *Config) { c.NodeName = "n1"; c.KVStore.Endpoints = []string{"etcd:2379"} }, "no scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mod(&cfg)
			err := cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid config refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestConfigSources: a flag beats WEFT_ env, which beats the config file.
func TestConfigSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(file, []byte("node-name: from-file\ncluster-name: file-cluster\nrouting-mode: native\npod-cidr-pool: [10.1.0.0/16, 10.2.0.0/16]\n"), 0o600)
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"--node-name", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	if err := daemonconfig.LoadEnv(fs, []string{"WEFT_NODE_NAME=from-env", "WEFT_CLUSTER_NAME=env-cluster", "PATH=/bin"}); err != nil {
		t.Fatal(err)
	}
	if err := daemonconfig.LoadFile(fs, file); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != "from-flag" || cfg.ClusterName != "env-cluster" || cfg.RoutingMode != "native" ||
		strings.Join(cfg.PodCIDRPool, ",") != "10.1.0.0/16,10.2.0.0/16" {
		t.Fatalf("got node %q cluster %q routing %q pool %v", cfg.NodeName, cfg.ClusterName, cfg.RoutingMode, cfg.PodCIDRPool)
	}
}

func TestConfigSourceErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, file, env, want string
	}{
		{"unknown key", "nodename: x\n", "", `unknown key "nodename"`},
		{"not an object", "- a\n- b\n", "", "want an object of flag names"},
		{"bad value", "health-port: many\n", "", "health-port"},
		{"bad env", "", "WEFT_HEALTH_PORT=lots", "WEFT_HEALTH_PORT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			cfg.RegisterFlags(fs)
			var err error
			if tc.env != "" {
				err = daemonconfig.LoadEnv(fs, []string{tc.env})
			} else {
				path := filepath.Join(dir, tc.name+".yaml")
				os.WriteFile(path, []byte(tc.file), 0o600)
				err = daemonconfig.LoadFile(fs, path)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
