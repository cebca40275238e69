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
	// PprofAddress serves Go's profiles at /debug/pprof/ on it
	// (host:port); empty: off.
	PprofAddress string
}

// DefaultConfig serves no metrics.
func DefaultConfig() Config { return Config{} }

// RegisterFlags adds --metrics-address to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Address, "metrics-address", c.Address,
		"serve Prometheus metrics on this host:port at /metrics (e.g. :"+strconv.Itoa(DefaultPort)+"); empty: off")
	fs.StringVar(&c.PprofAddress, "pprof-address", c.PprofAddress,
		"serve Go's CPU, heap and goroutine profiles on this host:port at /debug/pprof/ (e.g. 127.0.0.1:"+strconv.Itoa(PprofPort)+
			"; whoever reaches it reads the agent's stacks and memory: keep it on loopback); empty: off")
}

// PprofPort is the port documented for the agent's profiles (Go's usual).
const PprofPort = 6060

// Validate checks the addresses.
func (c Config) Validate() error {
	if err := validateAddress("metrics", c.Address, DefaultPort); err != nil {
		return err
	}
	return validateAddress("pprof", c.PprofAddress, PprofPort)
}

func validateAddress(what, addr string, example int) error {
	if addr == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s address %q: accepted: host:port or :port (e.g. :%d)", what, addr, example)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%s address %q: port %q: accepted: 1 to 65535", what, addr, port)
	}
	return nil
}
