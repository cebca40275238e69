package flow

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/weftnet/weft/datapath"
)

// Config is the agent's flow recording.
type Config struct {
	// Enabled records flows; off, the ring stays empty and the datapath's
	// ring buffer is not read.
	Enabled bool
	// RingSize is how many recent flows the agent keeps.
	RingSize int
	// ListenAddress serves the Observer API on TCP with mutual TLS (the
	// relay connects there); empty: only the unix socket.
	ListenAddress string
	// TLSCertFile, TLSKeyFile and TLSClientCAFile are the server's
	// certificate and the CA that signs the relay's client certificates.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
}

// DefaultRingSize is the default number of flows a node keeps.
const DefaultRingSize = 4095

// MaxRingSize bounds the ring (about 1 KiB a flow).
const MaxRingSize = 1 << 20

// DefaultConfig records flows into a ring of DefaultRingSize.
func DefaultConfig() Config { return Config{Enabled: true, RingSize: DefaultRingSize} }

// RegisterFlags adds the flow flags to fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Enabled, "flows", c.Enabled, "record the datapath's flow events (weft observe)")
	fs.IntVar(&c.RingSize, "flow-ring-size", c.RingSize, "recent flows kept per node")
	fs.StringVar(&c.ListenAddress, "flows-listen-address", c.ListenAddress, "serve flows on this TCP address with mutual TLS (for weft-relay); empty: off")
	fs.StringVar(&c.TLSCertFile, "flows-tls-cert", c.TLSCertFile, "certificate served on --flows-listen-address")
	fs.StringVar(&c.TLSKeyFile, "flows-tls-key", c.TLSKeyFile, "key of --flows-tls-cert")
	fs.StringVar(&c.TLSClientCAFile, "flows-tls-client-ca", c.TLSClientCAFile, "CA whose client certificates may read flows over TCP")
}

// Validate checks the ring size and that TCP serving has its certificates.
func (c Config) Validate() error {
	if c.RingSize < 1 || c.RingSize > MaxRingSize {
		return fmt.Errorf("flow ring size %d: accepted: 1 to %d", c.RingSize, MaxRingSize)
	}
	if c.ListenAddress != "" && (c.TLSCertFile == "" || c.TLSKeyFile == "" || c.TLSClientCAFile == "") {
		return fmt.Errorf("flows listen address %q: needs --flows-tls-cert, --flows-tls-key and --flows-tls-client-ca (flows are served with mutual TLS only)", c.ListenAddress)
	}
	return nil
}

// Source yields datapath events (datapath.FlowReader).
type Source interface {
	Read(ctx context.Context) (datapath.Flow, error)
}

// Recorder reads a node's datapath events, enriches them and writes them
// to its ring.
type Recorder struct {
	src     Source
	enr     *Enricher
	ring    *Ring
	metrics *Metrics
	log     *slog.Logger
}

// NewRecorder records src into ring through enr; metrics may be nil.
func NewRecorder(src Source, enr *Enricher, ring *Ring, metrics *Metrics, log *slog.Logger) *Recorder {
	return &Recorder{src: src, enr: enr, ring: ring, metrics: metrics, log: log.With("component", "flows")}
}

// Run records until ctx ends or the source fails.
func (r *Recorder) Run(ctx context.Context) error {
	for {
		ev, err := r.src.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("record flows: %w", err)
		}
		f := r.enr.Enrich(ev)
		r.ring.Write(f)
		r.metrics.Observe(f)
	}
}
