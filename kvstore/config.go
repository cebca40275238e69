package kvstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Backend names accepted in Config.Backend.
const (
	BackendEtcd   = "etcd"
	BackendConsul = "consul"
)

// DefaultPrefix is where all of Weft's keys live unless configured otherwise.
const DefaultPrefix = "weft/"

// DefaultMaxValueSize is the largest value every backend accepts with its
// default settings: Consul carries values base64-encoded inside a
// transaction, and a default agent caps a transaction at 512 KiB
// (limits.txn_max_req_len), which leaves room for about 384 KiB of value.
const DefaultMaxValueSize = 384 * 1024

// Config says how to reach a store.
type Config struct {
	Backend   string   // "etcd" or "consul"
	Endpoints []string // URLs: http(s)://host:port; etcd also unix://path
	Prefix    string   // every key starts with it; must end in "/"

	// DialTimeout bounds connecting and the first health check: an
	// unreachable store fails Open within it.
	DialTimeout time.Duration
	// LeaseTTL is how long leased keys outlive a dead client. Consul's
	// minimum session TTL is 10s (and it may take up to twice that).
	LeaseTTL time.Duration
	// MaxValueSize rejects larger values before sending them.
	MaxValueSize int

	RateLimit RateLimit
	TLS       TLSFiles

	// Username/Password authenticate to etcd (role-based access).
	Username string
	Password string
	// Token is a Consul ACL token.
	Token string
}

// TLSFiles names PEM files for mutual TLS. All empty: no TLS.
type TLSFiles struct {
	CAFile     string
	CertFile   string
	KeyFile    string
	ServerName string
}

// DefaultConfig is an embedded-etcd style local setup.
func DefaultConfig() Config {
	return Config{
		Backend:      BackendEtcd,
		Endpoints:    []string{"http://127.0.0.1:2379"},
		Prefix:       DefaultPrefix,
		DialTimeout:  5 * time.Second,
		LeaseTTL:     15 * time.Second,
		MaxValueSize: DefaultMaxValueSize,
		RateLimit:    DefaultRateLimit(),
	}
}

// RegisterFlags adds the store flags to fs, with cfg's values as defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Backend, "kvstore", c.Backend, "store backend: etcd or consul")
	fs.StringSliceVar(&c.Endpoints, "kvstore-endpoints", c.Endpoints, "store URLs, e.g. http://127.0.0.1:2379 (comma-separated)")
	fs.StringVar(&c.Prefix, "kvstore-prefix", c.Prefix, "key prefix every Weft key lives under (must end in /)")
	fs.DurationVar(&c.DialTimeout, "kvstore-dial-timeout", c.DialTimeout, "how long to wait for the store before giving up")
	fs.DurationVar(&c.LeaseTTL, "kvstore-lease-ttl", c.LeaseTTL, "how long this client's leased keys outlive it")
	fs.Float64Var(&c.RateLimit.QPS, "kvstore-qps", c.RateLimit.QPS, "steady request rate limit (0: unlimited)")
	fs.IntVar(&c.RateLimit.Burst, "kvstore-burst", c.RateLimit.Burst, "steady request burst")
	fs.Float64Var(&c.RateLimit.BootstrapQPS, "kvstore-bootstrap-qps", c.RateLimit.BootstrapQPS, "request rate limit while bootstrapping")
	fs.DurationVar(&c.RateLimit.BootstrapPeriod, "kvstore-bootstrap-period", c.RateLimit.BootstrapPeriod, "how long after connecting the bootstrap rate applies")
	fs.StringVar(&c.TLS.CAFile, "kvstore-ca-file", c.TLS.CAFile, "CA bundle to verify the store's certificate")
	fs.StringVar(&c.TLS.CertFile, "kvstore-cert-file", c.TLS.CertFile, "client certificate for mutual TLS")
	fs.StringVar(&c.TLS.KeyFile, "kvstore-key-file", c.TLS.KeyFile, "client key for mutual TLS")
	fs.StringVar(&c.Username, "kvstore-username", c.Username, "etcd user name")
	fs.StringVar(&c.Token, "kvstore-token", c.Token, "Consul ACL token")
}

// Validate checks every field and says what would be accepted.
func (c *Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendEtcd, BackendConsul:
	default:
		errs = append(errs, fmt.Errorf("kvstore backend %q: accepted are %q and %q", c.Backend, BackendEtcd, BackendConsul))
	}
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("kvstore endpoints: none given; give at least one URL such as http://127.0.0.1:2379"))
	}
	for _, ep := range c.Endpoints {
		if err := validateEndpoint(c.Backend, ep); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ValidatePrefix(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("kvstore dial timeout %v: must be positive", c.DialTimeout))
	}
	minTTL := time.Second
	if c.Backend == BackendConsul {
		minTTL = 10 * time.Second
	}
	if c.LeaseTTL < minTTL || c.LeaseTTL > 24*time.Hour {
		errs = append(errs, fmt.Errorf("kvstore lease TTL %v: accepted is %v to 24h for %s", c.LeaseTTL, minTTL, c.Backend))
	}
	if c.MaxValueSize <= 0 {
		errs = append(errs, fmt.Errorf("kvstore max value size %d: must be positive", c.MaxValueSize))
	}
	if err := c.RateLimit.validate(); err != nil {
		errs = append(errs, err)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kvstore TLS: give both a certificate and a key file, or neither"))
	}
	return errors.Join(errs...)
}

// ValidatePrefix accepts a non-empty prefix of printable characters ending in "/".
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return errors.New("kvstore prefix is empty: give one ending in \"/\", e.g. \"weft/\"")
	}
	if !strings.HasSuffix(prefix, "/") || strings.HasPrefix(prefix, "/") {
		return fmt.Errorf("kvstore prefix %q: must end in \"/\" and not start with one, e.g. \"weft/\"", prefix)
	}
	for _, r := range prefix {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("kvstore prefix %q: only printable ASCII without spaces is accepted", prefix)
		}
	}
	return nil
}

func validateEndpoint(backend, ep string) error {
	if !strings.Contains(ep, "://") {
		return fmt.Errorf("kvstore endpoint %q: no scheme; give scheme://host:port, e.g. http://%s", ep, ep)
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("kvstore endpoint %q: not a URL (%v); expected e.g. http://127.0.0.1:2379", ep, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "unix", "unixs":
		if backend == BackendEtcd && u.Host+u.Path != "" {
			return nil
		}
		return fmt.Errorf("kvstore endpoint %q: unix sockets are accepted for etcd only", ep)
	default:
		return fmt.Errorf("kvstore endpoint %q: scheme must be http or https (etcd also unix), e.g. http://127.0.0.1:2379", ep)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("kvstore endpoint %q: needs host:port, e.g. http://127.0.0.1:2379", ep)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("kvstore endpoint %q: unexpected path %q; give scheme://host:port only", ep, u.Path)
	}
	return nil
}

// Load builds a *tls.Config from the files, or nil when none are set.
func (f TLSFiles) Load() (*tls.Config, error) {
	if f.CAFile == "" && f.CertFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificate found", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	if f.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %s: %w", f.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
