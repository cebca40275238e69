package records

import (
	"fmt"
	"strings"
)

// l7lbDir holds L7 load-balancing documents:
//
//	state/l7lb/v1/<cluster>/<ns>/<name>   L7LoadBalancingRef, owned by its source
//
// STABLE (v1).
const l7lbDir = "state/l7lb/v1/"

// MaxL7LBRecord bounds an L7LoadBalancing record (the document is small:
// at most 16 backends).
const MaxL7LBRecord = 64 << 10

// L7LoadBalancingRef is the value of state/l7lb/v1/<cluster>/<ns>/<name>:
// one L7LoadBalancing document (weft.io/v1, parsed by proxy/l7lb) of the
// cluster, owned by its source (the CLI). The document is kept as given;
// readers parse it. STABLE (v1).
type L7LoadBalancingRef struct {
	Version   int    `json:"v"`
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Service and Port are the document's spec.service and spec.port:
	// the Service port it selects, kept beside the document so that a
	// clash is found without parsing every document.
	Service string `json:"service"`
	Port    uint16 `json:"port"`
	// Source says who owns the record, e.g. "cli".
	Source   string `json:"source,omitempty"`
	Document string `json:"document"`
}

func (r *L7LoadBalancingRef) version() int { return r.Version }
func (r *L7LoadBalancingRef) setVersion()  { r.Version = SchemaVersion }

// Validate checks names, the selected port and that a document is present.
func (r *L7LoadBalancingRef) Validate() error {
	if err := ValidateClusterName(r.Cluster); err != nil {
		return err
	}
	if err := ValidateNamespace(r.Namespace); err != nil {
		return err
	}
	if err := ValidateObjectName(r.Name); err != nil {
		return err
	}
	id := r.Namespace + "/" + r.Name
	if err := ValidateObjectName(r.Service); err != nil {
		return fmt.Errorf("L7LoadBalancing %s: service: %w", id, err)
	}
	if r.Port == 0 {
		return fmt.Errorf("L7LoadBalancing %s: %w: port 0, accepted are 1-65535", id, ErrInvalid)
	}
	if strings.TrimSpace(r.Document) == "" {
		return fmt.Errorf("L7LoadBalancing %s: %w: empty document", id, ErrInvalid)
	}
	if len(r.Source) > 63 {
		return fmt.Errorf("L7LoadBalancing %s: %w: source longer than 63 bytes", id, ErrInvalid)
	}
	return nil
}

// L7LBPrefix is state/l7lb/v1/<cluster>/.
func (k Keys) L7LBPrefix(cluster string) string { return k.prefix + l7lbDir + cluster + "/" }

// L7LB is state/l7lb/v1/<cluster>/<ns>/<name>.
func (k Keys) L7LB(cluster, ns, name string) string { return k.L7LBPrefix(cluster) + ns + "/" + name }

// DecodeL7LB decodes the value of key and checks it matches the key.
func (k Keys) DecodeL7LB(key string, value []byte) (L7LoadBalancingRef, error) {
	t, err := k.tail(key, l7lbDir)
	if err != nil {
		return L7LoadBalancingRef{}, err
	}
	parts := strings.Split(t, "/")
	if len(parts) != 3 {
		return L7LoadBalancingRef{}, fmt.Errorf("parse key %q: %w: expected <cluster>/<namespace>/<name>", key, ErrInvalid)
	}
	var r L7LoadBalancingRef
	if err := decode(key, value, MaxL7LBRecord, &r); err != nil {
		return L7LoadBalancingRef{}, err
	}
	for i, f := range [][2]string{{"cluster", r.Cluster}, {"namespace", r.Namespace}, {"name", r.Name}} {
		if f[1] != parts[i] {
			return L7LoadBalancingRef{}, mismatch(key, f[0], f[1], parts[i])
		}
	}
	return r, nil
}
