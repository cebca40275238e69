// Package l7lb is Weft's L7 load-balancing policy (its answer to
// CiliumEnvoyConfig, in a small YAML of its own): for one Service port,
// weighted backends across Services, retries on 5xx and connection
// failures with a per-try timeout, prefix or regex path rewrite, and
// outlier ejection after consecutive failures. Parse checks a document;
// Balancer serves HTTP by it. docs/l7lb.md says what is built; nothing
// runs it on the nodes yet.
package l7lb

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/weftnet/weft/state/records"
)

// APIVersion and Kind of the document.
const (
	APIVersion = "weft.io/v1"
	Kind       = "L7LoadBalancing"
)

// Policy is one L7LoadBalancing document.
type Policy struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace,omitempty"`
	} `json:"metadata"`
	Spec Spec `json:"spec"`
}

// Spec says how requests to Service:Port are balanced.
type Spec struct {
	Service  string           `json:"service"`
	Port     int              `json:"port"`
	Backends []WeightedTarget `json:"backends,omitempty"`
	Retries  *Retries         `json:"retries,omitempty"`
	Rewrite  *Rewrite         `json:"rewrite,omitempty"`
	Outlier  *Outlier         `json:"outlierDetection,omitempty"`
}

// WeightedTarget is a Service (of the policy's namespace) and its share.
type WeightedTarget struct {
	Service string `json:"service"`
	Port    int    `json:"port,omitempty"` // default: the policy's port
	Weight  int    `json:"weight"`
}

// Retries: a request that gets a 5xx, or whose backend refuses or does not
// answer within PerTryTimeout, is sent again to another backend, at most
// Attempts times in all.
type Retries struct {
	Attempts      int      `json:"attempts"`
	PerTryTimeout Duration `json:"perTryTimeout,omitempty"`
}

// Rewrite changes the request path: a prefix, or a regex substitution.
type Rewrite struct {
	Prefix *struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"prefix,omitempty"`
	Regex *struct {
		Pattern      string `json:"pattern"`
		Substitution string `json:"substitution"`
	} `json:"regex,omitempty"`
}

// Outlier ejects a backend for EjectionTime after Consecutive5xx
// failures (5xx, refused, timed out) in a row.
type Outlier struct {
	Consecutive5xx int      `json:"consecutive5xx"`
	EjectionTime   Duration `json:"ejectionTime"`
}

// Duration is a time.Duration written as "500ms".
type Duration struct{ time.Duration }

// UnmarshalJSON reads "500ms", "2s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q: want a duration such as 500ms or 2s", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// Limits of a policy.
const (
	MaxAttempts = 5
	MaxBackends = 16
)

// Parse reads and checks one document; a bad document is refused whole
// with every problem named.
func Parse(doc []byte) (*Policy, error) {
	var p Policy
	if err := yaml.UnmarshalStrict(doc, &p); err != nil {
		return nil, fmt.Errorf("L7LoadBalancing: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.Metadata.Namespace == "" {
		p.Metadata.Namespace = "default"
	}
	for i := range p.Spec.Backends {
		if p.Spec.Backends[i].Port == 0 {
			p.Spec.Backends[i].Port = p.Spec.Port
		}
	}
	if len(p.Spec.Backends) == 0 {
		p.Spec.Backends = []WeightedTarget{{Service: p.Spec.Service, Port: p.Spec.Port, Weight: 1}}
	}
	return &p, nil
}

// Validate checks every field, naming each problem and what is accepted.
func (p *Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if p.APIVersion != APIVersion || p.Kind != Kind {
		bad("apiVersion %q, kind %q: want %s, %s", p.APIVersion, p.Kind, APIVersion, Kind)
	}
	if err := records.ValidateObjectName(p.Metadata.Name); err != nil {
		bad("metadata.name: %v", err)
	}
	if p.Metadata.Namespace != "" {
		if err := records.ValidateNamespace(p.Metadata.Namespace); err != nil {
			bad("metadata.namespace: %v", err)
		}
	}
	s := p.Spec
	if err := records.ValidateObjectName(s.Service); err != nil {
		bad("spec.service: %v", err)
	}
	if s.Port < 1 || s.Port > 65535 {
		bad("spec.port %d: want 1-65535", s.Port)
	}
	if len(s.Backends) > MaxBackends {
		bad("spec.backends: %d targets, at most %d", len(s.Backends), MaxBackends)
	}
	seen := map[string]bool{}
	for i, b := range s.Backends {
		if err := records.ValidateObjectName(b.Service); err != nil {
			bad("spec.backends[%d].service: %v", i, err)
		}
		if b.Port < 0 || b.Port > 65535 {
			bad("spec.backends[%d].port %d: want 1-65535 (0: spec.port)", i, b.Port)
		}
		if b.Weight < 0 || b.Weight > 1000 {
			bad("spec.backends[%d].weight %d: want 0-1000", i, b.Weight)
		}
		key := fmt.Sprintf("%s:%d", b.Service, b.Port)
		if seen[key] {
			bad("spec.backends[%d]: %s is listed twice", i, b.Service)
		}
		seen[key] = true
	}
	if total := sumWeights(s.Backends); len(s.Backends) > 0 && total == 0 {
		bad("spec.backends: every weight is 0; give at least one a positive weight")
	}
	if r := s.Retries; r != nil {
		if r.Attempts < 1 || r.Attempts > MaxAttempts {
			bad("spec.retries.attempts %d: want 1-%d (tries in all, the first included)", r.Attempts, MaxAttempts)
		}
		if r.PerTryTimeout.Duration < 0 || r.PerTryTimeout.Duration > time.Minute {
			bad("spec.retries.perTryTimeout %s: want 0 (none) to 1m", r.PerTryTimeout)
		}
	}
	if rw := s.Rewrite; rw != nil {
		switch {
		case (rw.Prefix == nil) == (rw.Regex == nil):
			bad("spec.rewrite: give exactly one of prefix and regex")
		case rw.Prefix != nil:
			if !strings.HasPrefix(rw.Prefix.From, "/") || !strings.HasPrefix(rw.Prefix.To, "/") {
				bad("spec.rewrite.prefix: from %q and to %q must start with /", rw.Prefix.From, rw.Prefix.To)
			}
		default:
			if _, err := regexp.Compile(rw.Regex.Pattern); err != nil || rw.Regex.Pattern == "" {
				bad("spec.rewrite.regex.pattern %q: not a regular expression (RE2 syntax): %v", rw.Regex.Pattern, err)
			}
		}
	}
	if o := s.Outlier; o != nil {
		if o.Consecutive5xx < 1 || o.Consecutive5xx > 100 {
			bad("spec.outlierDetection.consecutive5xx %d: want 1-100", o.Consecutive5xx)
		}
		if o.EjectionTime.Duration <= 0 || o.EjectionTime.Duration > time.Hour {
			bad("spec.outlierDetection.ejectionTime %s: want more than 0, at most 1h", o.EjectionTime)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("L7LoadBalancing %s/%s refused: %w", p.Metadata.Namespace, p.Metadata.Name, errors.Join(errs...))
	}
	return nil
}

func sumWeights(ts []WeightedTarget) int {
	n := 0
	for _, t := range ts {
		n += t.Weight
	}
	return n
}
