package k8s

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftnet/weft/state/records"
)

// Config configures the Kubernetes source.
type Config struct {
	// Enabled turns the source on. A Kubeconfig implies it; without one the
	// in-cluster configuration (service account) is used.
	Enabled    bool
	Kubeconfig string
	// Cluster is the weft cluster name the records are written under.
	Cluster string
	// LeaseNamespace and LeaseName name the Lease the apiservers of one
	// cluster campaign for (default name weft-apiserver-<cluster>);
	// Identity is this apiserver's (default <hostname>-<pid>).
	LeaseNamespace string
	LeaseName      string
	Identity       string
	LeaseDuration  time.Duration
	RenewDeadline  time.Duration
	RetryPeriod    time.Duration
	// WriteQPS and WriteBurst limit store writes (the burst absorbs the
	// first listing).
	WriteQPS   float64
	WriteBurst int
	// Ingresses turns on the mirror of Ingresses of class weft and the
	// kubernetes.io/tls Secrets they name (docs/ingress.md); it needs RBAC
	// for ingresses, ingresses/status and secrets.
	Ingresses bool
}

// DefaultConfig is off, with client-go's usual lease timings.
func DefaultConfig() Config {
	return Config{
		LeaseNamespace: "kube-system",
		LeaseDuration:  15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		WriteQPS: 200, WriteBurst: 2000,
	}
}

// RegisterFlags adds the source's flags with c's values as defaults.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&c.Enabled, "kubernetes", c.Enabled, "mirror a Kubernetes cluster into the store (in-cluster config unless --kubeconfig)")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", c.Kubeconfig, "kubeconfig of the Kubernetes cluster to mirror (turns --kubernetes on)")
	fs.StringVar(&c.LeaseNamespace, "k8s-lease-namespace", c.LeaseNamespace, "namespace of the leader-election Lease")
	fs.StringVar(&c.LeaseName, "k8s-lease-name", c.LeaseName, "name of the leader-election Lease (default weft-apiserver-<cluster>)")
	fs.Float64Var(&c.WriteQPS, "k8s-write-qps", c.WriteQPS, "store writes per second of the Kubernetes mirror")
	fs.IntVar(&c.WriteBurst, "k8s-write-burst", c.WriteBurst, "store write burst of the Kubernetes mirror")
	fs.BoolVar(&c.Ingresses, "k8s-ingresses", c.Ingresses, "also mirror Ingresses of class weft and the kubernetes.io/tls Secrets they name, and write their status (needs RBAC for ingresses, ingresses/status and secrets)")
}

// On reports whether the source is enabled.
func (c *Config) On() bool { return c.Enabled || c.Kubeconfig != "" }

// Validate checks every field and says what would be accepted.
func (c *Config) Validate() error {
	var errs []error
	if err := records.ValidateClusterName(c.Cluster); err != nil {
		errs = append(errs, fmt.Errorf("kubernetes source: %w", err))
	}
	if err := records.ValidateNamespace(c.LeaseNamespace); err != nil {
		errs = append(errs, fmt.Errorf("--k8s-lease-namespace: %w", err))
	}
	if c.LeaseName != "" {
		if err := records.ValidateObjectName(c.LeaseName); err != nil {
			errs = append(errs, fmt.Errorf("--k8s-lease-name: %w", err))
		}
	}
	if !(c.LeaseDuration > c.RenewDeadline && c.RenewDeadline > c.RetryPeriod && c.RetryPeriod > 0) {
		errs = append(errs, fmt.Errorf("lease timings %v/%v/%v: accepted is lease duration > renew deadline > retry period > 0",
			c.LeaseDuration, c.RenewDeadline, c.RetryPeriod))
	}
	if c.WriteQPS <= 0 || c.WriteBurst < 1 {
		errs = append(errs, fmt.Errorf("--k8s-write-qps %v, --k8s-write-burst %d: both must be positive", c.WriteQPS, c.WriteBurst))
	}
	return errors.Join(errs...)
}

func (c *Config) leaseName() string {
	if c.LeaseName != "" {
		return c.LeaseName
	}
	return "weft-apiserver-" + c.Cluster
}

func (c *Config) identity() string {
	if c.Identity != "" {
		return c.Identity
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

// RESTConfig loads the kubeconfig, or the in-cluster configuration when
// none is given.
func (c *Config) RESTConfig() (*rest.Config, error) {
	if c.Kubeconfig != "" {
		rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("load kubeconfig %s: %w", c.Kubeconfig, err)
		}
		return rc, nil
	}
	rc, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("load in-cluster Kubernetes configuration: %w (outside a pod, give --kubeconfig)", err)
	}
	return rc, nil
}
