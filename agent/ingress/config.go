package ingress

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"
)

// Config is where a node serves the Ingresses.
type Config struct {
	// HTTPPort and HTTPSPort are TCP ports on the node's address (--node-ip);
	// 0 turns one off.
	HTTPPort, HTTPSPort int
}

// DefaultConfig serves on 80 and 443.
func DefaultConfig() Config { return Config{HTTPPort: 80, HTTPSPort: 443} }

// RegisterFlags adds --ingress-http-port and --ingress-https-port.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.HTTPPort, "ingress-http-port", c.HTTPPort, "TCP port on --node-ip where this node serves the cluster's Ingresses over HTTP (0: off)")
	fs.IntVar(&c.HTTPSPort, "ingress-https-port", c.HTTPSPort, "TCP port on --node-ip where this node terminates TLS for the Ingresses' spec.tls hosts (0: off)")
}

// Validate checks the ports.
func (c Config) Validate() error {
	var errs []error
	for name, p := range map[string]int{"ingress-http-port": c.HTTPPort, "ingress-https-port": c.HTTPSPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("--%s %d: want 0 (off) or 1-65535", name, p))
		}
	}
	if c.HTTPPort != 0 && c.HTTPPort == c.HTTPSPort {
		errs = append(errs, fmt.Errorf("--ingress-http-port and --ingress-https-port are both %d: want two ports", c.HTTPPort))
	}
	return errors.Join(errs...)
}
