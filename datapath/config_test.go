package datapath

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := DefaultConfig()
		c.Node, c.UnderlayDevice = "node-1", "eth0"
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // in the error; "" for valid
	}{
		{"defaults with node and underlay", func(*Config) {}, ""},
		{"native", func(c *Config) { c.Mode = ModeNative }, ""},
		{"node name with a slash", func(c *Config) { c.Node = "a/b" }, "invalid node name"},
		{"unknown mode", func(c *Config) { c.Mode = "geneve" }, "invalid mode"},
		{"no underlay", func(c *Config) { c.UnderlayDevice = "" }, "no underlay device"},
		{"no vxlan port", func(c *Config) { c.TunnelPort = 0 }, "no VXLAN device or port"},
		{"no logger", func(c *Config) { c.Log = nil }, "no logger"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an error about %q", err, tc.want)
			}
		})
	}
	if got := valid().PinDir(); got != "/sys/fs/bpf/weft/node-1" {
		t.Fatalf("PinDir() = %q", got)
	}
}
