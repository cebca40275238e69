package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Peer is one agent's flow endpoint.
type Peer struct {
	Node string // node name, as reported in status messages
	// Address is host:port of the agent's --flows-listen-address (mutual
	// TLS), or unix:<path> of its API socket on this host (the CLI merges
	// the nodes of a testenv environment so).
	Address string
	// TLS, when set, replaces Config.TLS for this peer (another cluster's
	// relay trusts other certificates than this cluster's agents).
	TLS *tls.Config
	// Relay says the peer is another cluster's relay: it is asked for its
	// own cluster's flows only (ScopeCluster), so relays of connected
	// clusters never ask each other in a circle, and its status lists
	// its nodes.
	Relay bool
}

// unixPath returns the socket path of a unix: address.
func (p Peer) unixPath() (string, bool) { return strings.CutPrefix(p.Address, "unix:") }

// Config is a relay.
type Config struct {
	// Peers are the agents; SetPeers replaces them while running.
	Peers []Peer
	// TLS is the client configuration the relay dials agents with: its
	// certificate and the CA of the agents' certificates.
	TLS *tls.Config
	// MaxDelay bounds how long a flow waits for older flows of quieter
	// agents before it is sent anyway.
	MaxDelay time.Duration
	// Retry is the pause between attempts to reach an agent that is down.
	Retry time.Duration
	// Dial opens the TCP connection to an agent (nil: a plain dialer),
	// e.g. to dial from another network namespace.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// ClusterOnly, when set, says whether a request must be answered
	// from this cluster's agents only, whatever it asks (e.g. a client
	// that is another cluster's relay). Requests carrying ScopeCluster
	// metadata are answered so anyway.
	ClusterOnly func(ctx context.Context) bool
}

// DefaultConfig waits at most 200 ms for ordering and retries every 2 s.
func DefaultConfig() Config {
	return Config{MaxDelay: 200 * time.Millisecond, Retry: 2 * time.Second}
}

// Validate checks the peers and timings.
func (c Config) Validate() error {
	if c.TLS == nil && slices.ContainsFunc(c.Peers, func(p Peer) bool { _, unix := p.unixPath(); return !unix && p.TLS == nil }) {
		return errors.New("relay: no TLS configuration: agents serve flows on TCP with mutual TLS only")
	}
	if c.MaxDelay <= 0 || c.MaxDelay > time.Minute {
		return fmt.Errorf("relay max delay %s: accepted: more than 0, at most 1m", c.MaxDelay)
	}
	if c.Retry <= 0 {
		return fmt.Errorf("relay retry interval %s: accepted: a positive duration", c.Retry)
	}
	return validatePeers(c.Peers)
}

func validatePeers(peers []Peer) error {
	seen := map[string]bool{}
	for _, p := range peers {
		if p.Node == "" {
			return fmt.Errorf("relay peer %q: no node name", p.Address)
		}
		if seen[p.Node] {
			return fmt.Errorf("relay peer %s: listed twice", p.Node)
		}
		seen[p.Node] = true
		if path, unix := p.unixPath(); unix {
			if !filepath.IsAbs(path) {
				return fmt.Errorf("relay peer %s address %q: accepted: host:port or unix:<absolute path>", p.Node, p.Address)
			}
			continue
		}
		if _, _, err := net.SplitHostPort(p.Address); err != nil {
			return fmt.Errorf("relay peer %s address %q: accepted: host:port or unix:<absolute path>", p.Node, p.Address)
		}
	}
	return nil
}
