package records

import (
	"fmt"
	"strings"
)

// Policy document formats.
const (
	PolicyFormatCilium     = "cilium"     // CiliumNetworkPolicy YAML
	PolicyFormatKubernetes = "kubernetes" // Kubernetes NetworkPolicy YAML
)

// PolicyClusterwide is the namespace segment under which clusterwide
// policies (CiliumClusterwideNetworkPolicy) are stored:
// state/policies/v1/_clusterwide/<name>. "_" never occurs in a namespace,
// so it cannot clash with one. STABLE (v1).
const PolicyClusterwide = "_clusterwide"

// PolicyRef is the value of state/policies/v1/<ns>/<name>: a policy document
// owned by its source (the CLI or the apiserver's Kubernetes sync).
// STABLE (v1).
type PolicyRef struct {
	Version   int    `json:"v"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Format    string `json:"format"`
	// Source says who owns the record, e.g. "cli" or "kubernetes".
	Source   string `json:"source,omitempty"`
	Document string `json:"document"`
}

// Validate checks names, format and that a document is present.
func (p *PolicyRef) Validate() error {
	if p.Namespace != PolicyClusterwide {
		if err := ValidateNamespace(p.Namespace); err != nil {
			return err
		}
	}
	if err := ValidateObjectName(p.Name); err != nil {
		return err
	}
	if p.Format != PolicyFormatCilium && p.Format != PolicyFormatKubernetes {
		return fmt.Errorf("policy %s/%s: %w: format %q, accepted are %q and %q", p.Namespace, p.Name, ErrInvalid, p.Format, PolicyFormatCilium, PolicyFormatKubernetes)
	}
	if strings.TrimSpace(p.Document) == "" {
		return fmt.Errorf("policy %s/%s: %w: empty document", p.Namespace, p.Name, ErrInvalid)
	}
	if len(p.Source) > 63 {
		return fmt.Errorf("policy %s/%s: %w: source longer than 63 bytes", p.Namespace, p.Name, ErrInvalid)
	}
	return nil
}

// DecodePolicyRef decodes the value of key and checks it matches the key.
func (k Keys) DecodePolicyRef(key string, value []byte) (PolicyRef, error) {
	t, err := k.tail(key, policiesDir)
	if err != nil {
		return PolicyRef{}, err
	}
	ns, name, ok := strings.Cut(t, "/")
	if !ok {
		return PolicyRef{}, fmt.Errorf("parse key %q: %w: expected <namespace>/<name>", key, ErrInvalid)
	}
	var p PolicyRef
	if err := decode(key, value, MaxPolicyRecord, &p); err != nil {
		return PolicyRef{}, err
	}
	if p.Namespace != ns {
		return PolicyRef{}, mismatch(key, "namespace", p.Namespace, ns)
	}
	if p.Name != name {
		return PolicyRef{}, mismatch(key, "name", p.Name, name)
	}
	return p, nil
}
