package apiserver

import (
	"strings"
	"testing"
)

func TestRelayFlagsRefusedNamingWhatIsAccepted(t *testing.T) {
	base := DefaultConfig()
	base.ClusterName = "c1"
	if err := base.Validate(); err != nil {
		t.Fatalf("default configuration of c1: %v", err)
	}
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"listen without port", func(c *Config) { c.RelayListen = "10.0.0.1" }, `--relay-listen "10.0.0.1": accepted is host:port`},
		{"advertise without listen", func(c *Config) { c.RelayAdvertise = "10.0.0.1:4245" }, "--relay-advertise without --relay-listen"},
		{"agent port out of range", func(c *Config) { c.RelayListen = ":4245"; c.RelayAgentPort = 70000 }, "--relay-agent-port 70000: accepted is 1-65535"},
		{"service map without port", func(c *Config) { c.RelayListen = ":4245"; c.RelayUIListen = "localhost" }, `--relay-ui-listen "localhost": accepted is host:port`},
		{"service map without relay", func(c *Config) { c.RelayUIListen = "127.0.0.1:12000" }, "--relay-ui-listen without --relay-listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.set(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// What connected clusters are told: the advertised address, or the
	// listen address when it names a host.
	for listen, advertise := range map[string]string{"10.0.0.1:4245": "10.0.0.1:4245", ":4245": "", "0.0.0.0:4245": "", "": ""} {
		c := base
		c.RelayListen = listen
		if got := c.info().Relay; got != advertise {
			t.Errorf("relay-listen %q: advertised %q, want %q", listen, got, advertise)
		}
	}
}

func TestGlobalCIDRFlagRefusedNamingWhatIsAccepted(t *testing.T) {
	base := DefaultConfig()
	base.ClusterName = "c1"
	base.GlobalCIDR = "242.1.0.0/16"
	if err := base.Validate(); err != nil {
		t.Fatalf("c1 with a global CIDR: %v", err)
	}
	if cc := base.clusterConfig(); cc.GlobalCIDR.String() != "242.1.0.0/16" || len(cc.ServiceCIDRs) != 1 {
		t.Fatalf("cluster-config of c1: %+v", cc)
	}
	for _, tc := range []struct {
		name string
		set  func(*Config)
		want string
	}{
		{"not a prefix", func(c *Config) { c.GlobalCIDR = "242.1.0.0" }, `--global-cidr "242.1.0.0": want a masked IPv4 prefix`},
		{"not masked", func(c *Config) { c.GlobalCIDR = "242.1.0.1/16" }, `--global-cidr "242.1.0.1/16": want a masked IPv4 prefix`},
		{"inside the pod pool", func(c *Config) { c.GlobalCIDR = "10.100.0.0/16" }, "global CIDR 10.100.0.0/16: invalid record: overlaps the cluster's pod CIDR 10.100.0.0/16"},
		{"over the service CIDR", func(c *Config) { c.GlobalCIDR = "10.96.0.0/16" }, "overlaps the cluster's service CIDR 10.96.0.0/16"},
		{"smaller than the pool", func(c *Config) { c.GlobalCIDR = "242.1.0.0/20" }, "4096 addresses, the IPv4 pod CIDR pool [10.100.0.0/16] has 65536"},
		{"bad service CIDR", func(c *Config) { c.ServiceCIDRs = []string{"10.96.0.1/16"} }, `--service-cidr "10.96.0.1/16"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.set(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
