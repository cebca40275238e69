package metrics

import (
	"fmt"
	"net"
	"strconv"

	"github.com/spf13/pflag"
)

// DefaultPort is the port documented for the agent's metrics.
const DefaultPort = 9962

// Config is the agent's metrics endpoint.
type Config struct {
	// Address serves /metrics on it (host:port); empty: off.
	Address string
}

// DefaultConfig serves no metrics.
func DefaultConfig() Config { return Config{} }

// RegisterFlags adds --metrics-address to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Address, "metrics-address", c.Address,
		"serve Prometheus metrics on this host:port at /metrics (e.g. :"+strconv.Itoa(DefaultPort)+"); empty: off")
}

// Validate checks the address.
func (c Config) Validate() error {
	if c.Address == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Address)
	if err != nil {
		return fmt.Errorf("metrics address %q: accepted: host:port or :port (e.g. :%d)", c.Address, DefaultPort)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("metrics address %q: port %q: accepted: 1 to 65535", c.Address, port)
	}
	return nil
}
