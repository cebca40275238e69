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
